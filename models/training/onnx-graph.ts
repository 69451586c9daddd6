import onnxProto from 'onnx-proto';
import type { onnx as P } from 'onnx-proto';
import type { Layer, TrainedNet } from './layers.js';

const { onnx } = onnxProto;

/** Graph input / output names every model in the repository uses. */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'probabilities';
export const BATCH_DIM = 'N';
export const OPSET = 13;
export const IR_VERSION = 8;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const { INT, INTS, STRING } = onnx.AttributeProto.AttributeType;

function floatTensor(name: string, dims: number[], data: Float32Array): P.ITensorProto {
  if (dims.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`tensor ${name}: dims ${dims} vs ${data.length} values`);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true); // little-endian, as ONNX requires
  return { name, dims, dataType: FLOAT, rawData: raw };
}

function int64Tensor(name: string, values: number[]): P.ITensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], dataType: INT64, rawData: raw };
}

function intAttr(name: string, i: number): P.IAttributeProto {
  return { name, type: INT, i };
}

function intsAttr(name: string, ints: number[]): P.IAttributeProto {
  return { name, type: INTS, ints };
}

function valueInfo(name: string, dims: (number | string)[]): P.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface GraphMeta {
  /** Graph name, e.g. "mnist-cnn". */
  readonly name: string;
  /** Free text stored in the model's doc_string. */
  readonly doc: string;
  readonly inputSize: number;
  readonly outputSize: number;
  /** Extra metadata_props entries (string key/values). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Builds an ONNX ModelProto (opset 13, IR 8) from a trained layer list. The input is `input` float32 [N, inputSize];
 * the network's last layer must be `softmax`, whose output is `probabilities` float32 [N, outputSize].
 */
export function buildModel(net: TrainedNet, meta: GraphMeta): P.ModelProto {
  const nodes: P.INodeProto[] = [];
  const initializers: P.ITensorProto[] = [];
  const counters = new Map<string, number>();
  const fresh = (prefix: string): string => {
    const n = (counters.get(prefix) ?? 0) + 1;
    counters.set(prefix, n);
    return `${prefix}${n}`;
  };

  let current = INPUT_NAME;
  const layers: readonly Layer[] = net.layers;
  if (layers.length === 0 || layers[layers.length - 1].kind !== 'softmax') throw new Error('network must end in softmax');

  layers.forEach((layer, idx) => {
    const last = idx === layers.length - 1;
    switch (layer.kind) {
      case 'image': {
        const node = fresh('reshape');
        const shape = `${node}_shape`;
        initializers.push(int64Tensor(shape, [-1, layer.channels, layer.side, layer.side]));
        const out = `${node}_out`;
        nodes.push({ name: node, opType: 'Reshape', input: [current, shape], output: [out] });
        current = out;
        break;
      }
      case 'dense': {
        const node = fresh('dense');
        initializers.push(floatTensor(`${node}_W`, [layer.inSize, layer.outSize], layer.w));
        initializers.push(floatTensor(`${node}_B`, [layer.outSize], layer.b));
        const out = `${node}_out`;
        nodes.push({
          name: node,
          opType: 'Gemm',
          input: [current, `${node}_W`, `${node}_B`],
          output: [out],
          attribute: [intAttr('transA', 0), intAttr('transB', 0)],
        });
        current = out;
        break;
      }
      case 'conv': {
        const node = fresh('conv');
        initializers.push(floatTensor(`${node}_W`, [layer.cout, layer.cin, layer.k, layer.k], layer.w));
        initializers.push(floatTensor(`${node}_B`, [layer.cout], layer.b));
        const out = `${node}_out`;
        nodes.push({
          name: node,
          opType: 'Conv',
          input: [current, `${node}_W`, `${node}_B`],
          output: [out],
          attribute: [
            intsAttr('kernel_shape', [layer.k, layer.k]),
            intsAttr('pads', [layer.pad, layer.pad, layer.pad, layer.pad]),
            intsAttr('strides', [1, 1]),
            intsAttr('dilations', [1, 1]),
            intAttr('group', 1),
          ],
        });
        current = out;
        break;
      }
      case 'relu': {
        const node = fresh('relu');
        nodes.push({ name: node, opType: 'Relu', input: [current], output: [`${node}_out`] });
        current = `${node}_out`;
        break;
      }
      case 'maxpool': {
        const node = fresh('maxpool');
        nodes.push({
          name: node,
          opType: 'MaxPool',
          input: [current],
          output: [`${node}_out`],
          attribute: [intsAttr('kernel_shape', [layer.size, layer.size]), intsAttr('strides', [layer.size, layer.size])],
        });
        current = `${node}_out`;
        break;
      }
      case 'flatten': {
        const node = fresh('flatten');
        nodes.push({ name: node, opType: 'Flatten', input: [current], output: [`${node}_out`], attribute: [intAttr('axis', 1)] });
        current = `${node}_out`;
        break;
      }
      case 'shifts': {
        // Pad by r, then slice the (2r+1)^2 windows: window (dy, dx) is the digit moved by (r - dy, r - dx).
        const { radius: r, side } = layer;
        const node = fresh('shifts');
        initializers.push(int64Tensor(`${node}_pads`, [0, 0, r, r, 0, 0, r, r]));
        nodes.push({ name: `${node}_pad`, opType: 'Pad', input: [current, `${node}_pads`], output: [`${node}_padded`], attribute: [{ name: 'mode', type: STRING, s: new TextEncoder().encode('constant') }] });
        initializers.push(int64Tensor(`${node}_axes`, [2, 3]));
        const copies: string[] = [];
        for (let dy = 0; dy <= 2 * r; dy++) {
          for (let dx = 0; dx <= 2 * r; dx++) {
            const id = `${node}_${dy}_${dx}`;
            initializers.push(int64Tensor(`${id}_starts`, [dy, dx]));
            initializers.push(int64Tensor(`${id}_ends`, [dy + side, dx + side]));
            nodes.push({ name: id, opType: 'Slice', input: [`${node}_padded`, `${id}_starts`, `${id}_ends`, `${node}_axes`], output: [`${id}_out`] });
            copies.push(`${id}_out`);
          }
        }
        nodes.push({ name: `${node}_concat`, opType: 'Concat', input: copies, output: [`${node}_stacked`], attribute: [intAttr('axis', 1)] });
        initializers.push(int64Tensor(`${node}_shape`, [-1, 1, side, side]));
        nodes.push({ name: `${node}_reshape`, opType: 'Reshape', input: [`${node}_stacked`, `${node}_shape`], output: [`${node}_out`] });
        current = `${node}_out`;
        break;
      }
      case 'mean': {
        const node = fresh('mean');
        initializers.push(int64Tensor(`${node}_shape`, [-1, layer.copies, layer.classes]));
        nodes.push({ name: `${node}_reshape`, opType: 'Reshape', input: [current, `${node}_shape`], output: [`${node}_grouped`] });
        nodes.push({ name: node, opType: 'ReduceMean', input: [`${node}_grouped`], output: [`${node}_out`], attribute: [intsAttr('axes', [1]), intAttr('keepdims', 0)] });
        current = `${node}_out`;
        break;
      }
      case 'nearest': {
        const node = fresh('nearest');
        initializers.push(floatTensor(`${node}_W`, [layer.dim, layer.count], layer.w));
        initializers.push(floatTensor(`${node}_B`, [layer.count], layer.b));
        nodes.push({ name: `${node}_distance`, opType: 'Gemm', input: [current, `${node}_W`, `${node}_B`], output: [`${node}_d`], attribute: [intAttr('transA', 0), intAttr('transB', 0)] });
        initializers.push(int64Tensor(`${node}_k`, [layer.k]));
        nodes.push({
          name: `${node}_topk`,
          opType: 'TopK',
          input: [`${node}_d`, `${node}_k`],
          output: [`${node}_dk`, `${node}_idx`],
          attribute: [intAttr('axis', 1), intAttr('largest', 0), intAttr('sorted', 1)],
        });
        initializers.push(floatTensor(`${node}_votes`, [layer.count, layer.classes], layer.votes));
        nodes.push({ name: `${node}_gather`, opType: 'Gather', input: [`${node}_votes`, `${node}_idx`], output: [`${node}_v`], attribute: [intAttr('axis', 0)] });
        initializers.push(floatTensor(`${node}_rank`, [layer.k, 1], layer.rankWeights));
        nodes.push({ name: `${node}_weigh`, opType: 'Mul', input: [`${node}_v`, `${node}_rank`], output: [`${node}_wv`] });
        initializers.push(int64Tensor(`${node}_axes`, [1]));
        nodes.push({ name: `${node}_sum`, opType: 'ReduceSum', input: [`${node}_wv`, `${node}_axes`], output: [`${node}_out`], attribute: [intAttr('keepdims', 0)] });
        current = `${node}_out`;
        break;
      }
      case 'softmax': {
        if (!last) throw new Error('softmax must be the last layer');
        nodes.push({ name: 'softmax', opType: 'Softmax', input: [current], output: [OUTPUT_NAME], attribute: [intAttr('axis', 1)] });
        current = OUTPUT_NAME;
        break;
      }
    }
  });

  const graph: P.IGraphProto = {
    name: meta.name,
    node: nodes,
    initializer: initializers,
    input: [valueInfo(INPUT_NAME, [BATCH_DIM, meta.inputSize])],
    output: [valueInfo(OUTPUT_NAME, [BATCH_DIM, meta.outputSize])],
  };

  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'clipper-ts models/train.ts',
    producerVersion: '1',
    docString: meta.doc,
    graph,
    metadataProps: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

/** Serialises a ModelProto with onnx-proto's generated encoder. */
export function encodeModel(model: P.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
