import * as fs from 'node:fs';
import type { Command } from 'commander';
import { loadModel } from '../../model/store.ts';
import { decodeRequest, encodeResponse } from '../../protocol/oip.ts';
import { badRequest } from '../../util/errors.ts';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('score an Open Inference Protocol v2 JSON request with the whole model in this process (the reference)')
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--input <file>', "request JSON: inputs 'dense' FP32 [B, num_dense], 'indices' INT64 [N], 'offsets' INT64 [B·T+1]")
    .option('--output <file>', 'write the response JSON here instead of stdout')
    .action(async (opts: { model: string; input: string; output?: string }) => {
      let body: unknown;
      try {
        body = JSON.parse(fs.readFileSync(opts.input, 'utf8'));
      } catch (e) {
        throw badRequest(`${opts.input}: ${(e as Error).message}`, 'the input must be a JSON file with an OIP v2 infer request');
      }
      const model = loadModel(opts.model);
      const batch = decodeRequest(body, model.config);
      // Loaded on use: onnxruntime is ~35 MiB of RSS that every other command (serve's supervisor among them) does without.
      const { ReferenceModel } = await import('../../reference/reference-model.ts');
      const reference = await ReferenceModel.create(model);
      try {
        const scores = await reference.predict(batch);
        const text = JSON.stringify(encodeResponse(model.config.name, scores, (body as { id?: string }).id)) + '\n';
        if (opts.output) fs.writeFileSync(opts.output, text);
        else process.stdout.write(text);
      } finally {
        await reference.close();
      }
    });
}
