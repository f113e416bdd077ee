// The metav1.Status the kubelet writes on the error stream when a command ends, byte for byte as Go's
// encoding/json writes it (field order, "metadata":{} always present, empty fields left out).

export interface StatusCause {
  reason?: string;
  message?: string;
}

export interface Status {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: StatusCause[] };
  code?: number;
}

export function successStatus(): Status {
  return { metadata: {}, status: 'Success' };
}

/** A command that exited non-zero; the client reads the code from the ExitCode cause. */
export function exitCodeStatus(cmd: string[], exitCode: number): Status {
  return {
    metadata: {},
    status: 'Failure',
    // As containerd words the exit error the kubelet wraps (Go's %v of a []string).
    message: `command terminated with non-zero exit code: error executing command [${cmd.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError. */
export function internalErrorStatus(message: string): Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** v4 and later: the Status as JSON. */
export function encodeStatusJson(status: Status): Buffer {
  return Buffer.from(JSON.stringify(status));
}

/** Before v4: nothing on success, the message text on failure. */
export function encodeStatusText(status: Status): Buffer | undefined {
  return status.status === 'Success' ? undefined : Buffer.from(status.message ?? 'unknown error');
}
