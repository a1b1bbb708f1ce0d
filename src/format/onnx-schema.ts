// The ONNX protobuf messages as a protobufjs JSON descriptor. Field numbers are the ONNX IR wire format
// (onnx.proto, IR version 10); field names are camelCase so decoded objects read like the TypeScript
// types in onnx-types.ts. Messages this project never reads (training info) are kept so that a model
// round-trips through the importer without losing them.

type Rule = "repeated" | undefined;
function f(type: string, id: number, rule?: Rule, packed?: boolean) {
  const field: { type: string; id: number; rule?: string; options?: { packed: boolean } } = { type, id };
  if (rule) field.rule = rule;
  if (packed !== undefined) field.options = { packed };
  return field;
}

const R = "repeated" as const;

export const ONNX_DESCRIPTOR = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: f("string", 1), value: f("string", 2) } },
        OperatorSetIdProto: { fields: { domain: f("string", 1), version: f("int64", 2) } },
        TensorAnnotation: {
          fields: {
            tensorName: f("string", 1),
            quantParameterTensorNames: f("StringStringEntryProto", 2, R),
          },
        },
        AttributeProto: {
          fields: {
            name: f("string", 1),
            refAttrName: f("string", 21),
            docString: f("string", 13),
            type: f("int32", 20),
            f: f("float", 2),
            i: f("int64", 3),
            s: f("bytes", 4),
            t: f("TensorProto", 5),
            g: f("GraphProto", 6),
            sparseTensor: f("SparseTensorProto", 22),
            tp: f("TypeProto", 14),
            floats: f("float", 7, R, true),
            ints: f("int64", 8, R, true),
            strings: f("bytes", 9, R),
            tensors: f("TensorProto", 10, R),
            graphs: f("GraphProto", 11, R),
            sparseTensors: f("SparseTensorProto", 23, R),
            typeProtos: f("TypeProto", 15, R),
          },
        },
        ValueInfoProto: {
          fields: {
            name: f("string", 1),
            type: f("TypeProto", 2),
            docString: f("string", 3),
            metadataProps: f("StringStringEntryProto", 4, R),
          },
        },
        NodeProto: {
          fields: {
            input: f("string", 1, R),
            output: f("string", 2, R),
            name: f("string", 3),
            opType: f("string", 4),
            domain: f("string", 7),
            overload: f("string", 8),
            attribute: f("AttributeProto", 5, R),
            docString: f("string", 6),
            metadataProps: f("StringStringEntryProto", 9, R),
          },
        },
        TrainingInfoProto: {
          fields: {
            initialization: f("GraphProto", 1),
            algorithm: f("GraphProto", 2),
            initializationBinding: f("StringStringEntryProto", 3, R),
            updateBinding: f("StringStringEntryProto", 4, R),
          },
        },
        ModelProto: {
          fields: {
            irVersion: f("int64", 1),
            opsetImport: f("OperatorSetIdProto", 8, R),
            producerName: f("string", 2),
            producerVersion: f("string", 3),
            domain: f("string", 4),
            modelVersion: f("int64", 5),
            docString: f("string", 6),
            graph: f("GraphProto", 7),
            metadataProps: f("StringStringEntryProto", 14, R),
            trainingInfo: f("TrainingInfoProto", 20, R),
            functions: f("FunctionProto", 25, R),
          },
        },
        GraphProto: {
          fields: {
            node: f("NodeProto", 1, R),
            name: f("string", 2),
            initializer: f("TensorProto", 5, R),
            sparseInitializer: f("SparseTensorProto", 15, R),
            docString: f("string", 10),
            input: f("ValueInfoProto", 11, R),
            output: f("ValueInfoProto", 12, R),
            valueInfo: f("ValueInfoProto", 13, R),
            quantizationAnnotation: f("TensorAnnotation", 14, R),
            metadataProps: f("StringStringEntryProto", 16, R),
          },
        },
        TensorProto: {
          fields: {
            dims: f("int64", 1, R, true),
            dataType: f("int32", 2),
            segment: f("Segment", 3),
            floatData: f("float", 4, R, true),
            int32Data: f("int32", 5, R, true),
            stringData: f("bytes", 6, R),
            int64Data: f("int64", 7, R, true),
            name: f("string", 8),
            docString: f("string", 12),
            rawData: f("bytes", 9),
            externalData: f("StringStringEntryProto", 13, R),
            dataLocation: f("int32", 14),
            doubleData: f("double", 10, R, true),
            uint64Data: f("uint64", 11, R, true),
            metadataProps: f("StringStringEntryProto", 16, R),
          },
          nested: { Segment: { fields: { begin: f("int64", 1), end: f("int64", 2) } } },
        },
        SparseTensorProto: {
          fields: { values: f("TensorProto", 1), indices: f("TensorProto", 2), dims: f("int64", 3, R, true) },
        },
        TensorShapeProto: {
          fields: { dim: f("Dimension", 1, R) },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ["dimValue", "dimParam"] } },
              fields: { dimValue: f("int64", 1), dimParam: f("string", 2), denotation: f("string", 3) },
            },
          },
        },
        TypeProto: {
          oneofs: {
            value: { oneof: ["tensorType", "sequenceType", "mapType", "optionalType", "sparseTensorType"] },
          },
          fields: {
            tensorType: f("Tensor", 1),
            sequenceType: f("Sequence", 4),
            mapType: f("Map", 5),
            optionalType: f("Optional", 9),
            sparseTensorType: f("SparseTensor", 8),
            denotation: f("string", 6),
          },
          nested: {
            Tensor: { fields: { elemType: f("int32", 1), shape: f("TensorShapeProto", 2) } },
            Sequence: { fields: { elemType: f("TypeProto", 1) } },
            Map: { fields: { keyType: f("int32", 1), valueType: f("TypeProto", 2) } },
            Optional: { fields: { elemType: f("TypeProto", 1) } },
            SparseTensor: { fields: { elemType: f("int32", 1), shape: f("TensorShapeProto", 2) } },
          },
        },
        FunctionProto: {
          fields: {
            name: f("string", 1),
            input: f("string", 4, R),
            output: f("string", 5, R),
            attribute: f("string", 6, R),
            attributeProto: f("AttributeProto", 11, R),
            node: f("NodeProto", 7, R),
            docString: f("string", 8),
            opsetImport: f("OperatorSetIdProto", 9, R),
            domain: f("string", 10),
            overload: f("string", 13),
            valueInfo: f("ValueInfoProto", 12, R),
            metadataProps: f("StringStringEntryProto", 14, R),
          },
        },
      },
    },
  },
};
