# syntax=docker/dockerfile:1.4
# The function image: `cicada serve` speaking the Open Inference Protocol (KServe v2) on port 8080, for
# Knative, KServe or any container platform (deploy/). The bundle is a named build context, so it need
# not live in this repository (bundles are generated under ~/.cache/cicada/bundles):
#
#   docker build --build-context bundle=$HOME/.cache/cicada/bundles/resnet50-seed0-auto -t cicada-resnet50 .
#   docker run --rm -p 8080:8080 cicada-resnet50
#
# `--target runtime` builds the image without a model; mount bundles at /models and name them:
#
#   docker build --target runtime -t cicada-runtime .
#   docker run --rm -p 8080:8080 -v /srv/bundles:/models:ro cicada-runtime /models/a /models/b --host 0.0.0.0
#
# NOTE: strategies eager and ort-best also read the original .onnx model the bundle was imported from
# (manifest.model.source, an absolute path on the machine that imported it); an image with the bundle
# alone serves pisel, mini, preload and cicada.
FROM node:20-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    CICADA_CACHE=/tmp/cicada-cache
# .npmrc sets onnxruntime-node-install=skip: the CPU binary ships inside the npm package and nothing is
# downloaded at install time.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN mkdir -p /models
USER node
EXPOSE 8080
# SIGTERM: stop accepting, finish the requests in flight (at most --timeout-ms), dispose, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/cicada.js", "serve"]
CMD ["/models/bundle", "--host", "0.0.0.0", "--port", "8080"]

# The default target: the runtime with one bundle at /models/bundle.
FROM runtime AS function
COPY --from=bundle --chown=node:node . /models/bundle
