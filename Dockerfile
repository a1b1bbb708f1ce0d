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

# The build: TypeScript compiled to dist/ (JavaScript only runs in the image; no tsx, no compiler).
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` (the build) runs below, once the sources are in place.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    CICADA_CACHE=/tmp/cicada-cache
# .npmrc sets onnxruntime-node-install=skip: the CPU binary ships inside the npm package and nothing is
# downloaded at install time. --ignore-scripts: the package's own `prepare` (the build) needs the dev
# dependencies, and dist/ comes from the build stage.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /models
USER node
EXPOSE 8080
# SIGTERM: stop accepting, finish the requests in flight (at most --timeout-ms), dispose, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/cicada.js", "serve"]
CMD ["/models/bundle", "--host", "0.0.0.0", "--port", "8080"]

# The default target: the runtime with one bundle at /models/bundle, prepared at image build (MiniLoader's
# cache in $CICADA_CACHE), so that no request builds a cached form. The cache key holds the CPU: an image
# run on another CPU answers its first request from the bundle's own graph and rebuilds the cache after it.
FROM runtime AS function
COPY --from=bundle --chown=node:node . /models/bundle
RUN ["node", "bin/cicada.js", "prepare", "/models/bundle", "--strategies", "cicada"]
