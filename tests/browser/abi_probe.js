// Run the sampling and logit-processing functions of a model library on WebGPU, loading it the
// way WebLLM 0.2.86 does, with WebLLM's own bundled tvmjs. Each case names a function, its
// inputs ([data, shape, dtype]) and which arguments to read back afterwards.
async ({ tvmjsUrl, libUrl, cases }) => {
  const { tvmjs } = await import(tvmjsUrl);
  const wasm = await (await fetch(libUrl)).arrayBuffer();
  const tvm = await tvmjs.instantiate(wasm, tvmjs.createPolyfillWASI(), console.log);
  const gpu = await tvmjs.detectGPUDevice();
  tvm.initWebGPU(gpu.device);
  const dev = tvm.webgpu();
  tvm.beginScope();
  const vm = tvm.detachFromCurrentScope(tvm.createVirtualMachine(dev));
  await tvm.asyncLoadWebGPUPipelines(vm.getInternalModule());
  const read = async (tensor) => {
    const host = tvm.empty(tensor.shape, tensor.dtype, tvm.cpu());
    host.copyFrom(tensor);
    await dev.sync();
    return Array.from(host.toArray());
  };
  const results = [];
  for (const { func, args, readArgs } of cases) {
    const tensors = args.map(([data, shape, dtype]) => tvm.empty(shape, dtype, dev).copyFrom(data));
    const ret = vm.getFunction(func)(...tensors);
    const outputs = [];
    if (ret !== undefined && ret !== null && ret.size !== undefined) {
      for (let i = 0; i < ret.size(); i++) outputs.push(await read(ret.get(i)));
    } else if (ret !== undefined && ret !== null && ret.shape !== undefined) {
      outputs.push(await read(ret));
    }
    for (const index of readArgs || []) outputs.push(await read(tensors[index]));
    results.push(outputs);
  }
  tvm.endScope();
  return results;
}
