import type { AttachRequest__Output } from '../../generated/runtime/v1/AttachRequest';
import type { AttachResponse } from '../../generated/runtime/v1/AttachResponse';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function attach(deps: ServerDeps): UnaryHandler<AttachRequest__Output, AttachResponse> {
  return async (request) => {
    if (!request.container_id) throw new InvalidArgumentError('Attach: container_id is empty');
    const record = await deps.containers.status(request.container_id);
    if (record.state !== 'running') throw new FailedPreconditionError(`Attach: container ${record.id} is not running (${record.state})`);
    if (request.stdin && !record.spec.process.stdin) throw new InvalidArgumentError(`Attach: container ${record.id} was not created with stdin`);
    const url = deps.streaming.register({ containerId: record.id, tty: request.tty, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr });
    return { url };
  };
}
