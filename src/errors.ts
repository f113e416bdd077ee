// berth's own error classes. Domain modules throw these; the gRPC layer maps each code to a status code.

export type ErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'DEADLINE_EXCEEDED'
  | 'UNAVAILABLE'
  | 'UNIMPLEMENTED'
  | 'UNAUTHENTICATED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNKNOWN'
  | 'INTERNAL';

export class BerthError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class NotFoundError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

export class InvalidArgumentError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

export class AlreadyExistsError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', message, options);
  }
}

export class FailedPreconditionError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
  }
}

export class DeadlineExceededError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

export class UnavailableError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class UnimplementedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNIMPLEMENTED', message, options);
  }
}

export class UnauthenticatedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
  }
}

/** Out of disk space, or a configured limit (layer size, entry count) exceeded. */
export class ResourceExhaustedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

/**
 * An image the trust policy refuses. The message starts with the CRI's well-known "SignatureValidationFailed"
 * and the code is UNKNOWN: the kubelet recognises the error only so (it strips an UNKNOWN status to its
 * message and matches that prefix), and shows SignatureValidationFailed in the pod's status and events.
 */
export class SignatureValidationError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNKNOWN', `SignatureValidationFailed: ${message}`, options);
  }
}

/** Out of disk space or quota (blocks or inodes). */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Anything that is not a BerthError is an internal error, except a full disk wherever it strikes (a
 * record, a directory, a mount): that is the node's state, RESOURCE_EXHAUSTED.
 */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof BerthError) return err.code;
  return isNoSpace(err) ? 'RESOURCE_EXHAUSTED' : 'INTERNAL';
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
