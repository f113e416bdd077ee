import type { ExecSyncRequest__Output } from '../../generated/runtime/v1/ExecSyncRequest';
import type { ExecSyncResponse } from '../../generated/runtime/v1/ExecSyncResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function execSync(deps: ServerDeps): UnaryHandler<ExecSyncRequest__Output, ExecSyncResponse> {
  return async (request) => {
    const result = await deps.containers.execSync(request.container_id, request.cmd, Number(request.timeout));
    return { stdout: result.stdout, stderr: result.stderr, exit_code: result.exitCode };
  };
}
