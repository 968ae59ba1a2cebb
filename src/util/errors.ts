/**
 * Every user-facing failure is a ShardwiseError with a stable code, a message that says what
 * was wrong, and a hint that says what to do. One module, so codes stay unique and greppable.
 */
export const ErrorCodes = {
  /** A command-line argument or option is missing or malformed. */
  BAD_ARGUMENT: 'SW_BAD_ARGUMENT',
  /** model.json is missing, unparsable or inconsistent. */
  MODEL_MANIFEST: 'SW_MODEL_MANIFEST',
  /** A tensor file of a model is missing, truncated or of the wrong size. */
  MODEL_TENSOR: 'SW_MODEL_TENSOR',
  /** An imported checkpoint does not have the expected layout. */
  IMPORT_FORMAT: 'SW_IMPORT_FORMAT',
  /** An inference request is malformed (shape, range, non-finite value, a bad header or URL). */
  BAD_REQUEST: 'SW_BAD_REQUEST',
  /** A request that changes state came without the admin token, or with a wrong one. */
  UNAUTHORIZED: 'SW_UNAUTHORIZED',
  /** No such route, model or model version. */
  NOT_FOUND: 'SW_NOT_FOUND',
  /** The route exists but not for this HTTP method. */
  METHOD_NOT_ALLOWED: 'SW_METHOD_NOT_ALLOWED',
  /** A request body (or its JSON part) is over the server's limit. */
  BODY_TOO_LARGE: 'SW_BODY_TOO_LARGE',
  /** The front end is at its admission limit: retry after the Retry-After seconds. */
  OVERLOADED: 'SW_OVERLOADED',
  /** The request's headers are over the server's limit. */
  HEADERS_TOO_LARGE: 'SW_HEADERS_TOO_LARGE',
  /** The client took too long to send its request. */
  REQUEST_TIMEOUT: 'SW_REQUEST_TIMEOUT',
  /** A trace file is not a shardwise trace or is corrupt. */
  TRACE_FORMAT: 'SW_TRACE_FORMAT',
  /** A hotness profile file is not a shardwise profile, is corrupt, or does not fit the model. */
  PROFILE_FORMAT: 'SW_PROFILE_FORMAT',
  /** A cost model (cost.json) is malformed or cannot answer for this model. */
  COST_MODEL: 'SW_COST_MODEL',
  /** A plan file is malformed or does not fit the model. */
  PLAN: 'SW_PLAN',
  /** A service could not start, or stopped answering. */
  SERVICE: 'SW_SERVICE',
  /** A request ran past its deadline. */
  TIMEOUT: 'SW_TIMEOUT',
  /** The host cannot run this (for example a big-endian CPU). */
  UNSUPPORTED: 'SW_UNSUPPORTED',
  /** A file or folder a command reads or writes is missing, not permitted, or the disk is full. */
  FILE_SYSTEM: 'SW_FILE_SYSTEM',
  /** A bug: anything that is not one of the above. */
  INTERNAL: 'SW_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The HTTP status each code answers with, so a route never picks one itself. */
const HTTP_STATUS: Record<ErrorCode, number> = {
  SW_BAD_ARGUMENT: 400,
  SW_MODEL_MANIFEST: 500,
  SW_MODEL_TENSOR: 500,
  SW_IMPORT_FORMAT: 400,
  SW_BAD_REQUEST: 400,
  SW_UNAUTHORIZED: 401,
  SW_NOT_FOUND: 404,
  SW_METHOD_NOT_ALLOWED: 405,
  SW_BODY_TOO_LARGE: 413,
  SW_OVERLOADED: 429,
  SW_HEADERS_TOO_LARGE: 431,
  SW_REQUEST_TIMEOUT: 408,
  SW_TRACE_FORMAT: 400,
  SW_PROFILE_FORMAT: 400,
  SW_COST_MODEL: 400,
  SW_PLAN: 400,
  SW_SERVICE: 503,
  SW_TIMEOUT: 504,
  SW_UNSUPPORTED: 500,
  SW_FILE_SYSTEM: 500,
  SW_INTERNAL: 500,
};

/** The HTTP status of any thrown value: a ShardwiseError's code decides, anything else is a 500. */
export function httpStatusOf(e: unknown): number {
  return e instanceof ShardwiseError ? (HTTP_STATUS[e.code] ?? 500) : 500;
}

export class ShardwiseError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'ShardwiseError';
    this.code = code;
    this.hint = hint;
  }

  /** One line for a terminal: the message, then what to do. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

/** What an errno means to the user: the reason, then what to do. */
type ErrnoFailures = Record<string, [reason: string, hint: string]>;

const LISTEN_FAILURES: ErrnoFailures = {
  EADDRINUSE: ['the address is in use', 'another process holds this port: stop it, or choose another port (serve --port, a pod\'s --listen; 0 picks a free one)'],
  EACCES: ['permission denied', 'a port under 1024 needs root (or CAP_NET_BIND_SERVICE): choose a higher one'],
  EADDRNOTAVAIL: ['the address is not one of this host\'s', 'listen on an address of this host: 127.0.0.1, 0.0.0.0, or one of its interfaces'],
};

const FILE_FAILURES: ErrnoFailures = {
  ENOENT: ['no such file or folder', 'check the path: a file to write needs its folder to exist'],
  EACCES: ['permission denied', 'pick a path this user can use'],
  EPERM: ['not permitted', 'pick a path this user can use'],
  ENOTDIR: ['a part of the path is not a folder', 'check the path'],
  EISDIR: ['it is a folder', 'give a file'],
  ENOSPC: ['no space left on the device', 'free some space, or write elsewhere'],
  EROFS: ['the file system is read-only', 'write elsewhere'],
};

/** A system call's failure with an errno of `failures` as `${subject}: reason (ERRNO)` and its hint; anything else as it came. */
function errnoError(e: unknown, failures: ErrnoFailures, code: ErrorCode, subject: string | undefined): unknown {
  const errno = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
  const failure = failures[errno];
  return failure && subject ? new ShardwiseError(code, `${subject}: ${failure[0]} (${errno})`, failure[1]) : e;
}

/** A server's listen() failure as what it is (the address, the reason, what to do), not an unhandled stack. */
export const listenError = (e: unknown, address: string): unknown => errnoError(e, LISTEN_FAILURES, ErrorCodes.SERVICE, `cannot listen on ${address}`);

/** A file system failure (ENOENT on open, EACCES…) naming its path, not a stack. */
export const fileSystemError = (e: unknown): unknown => errnoError(e, FILE_FAILURES, ErrorCodes.FILE_SYSTEM, (e as NodeJS.ErrnoException | undefined)?.path);

export const badArgument = (message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.BAD_ARGUMENT, message, hint);
export const badRequest = (message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.BAD_REQUEST, message, hint);
export const notFound = (message: string, hint?: string) => new ShardwiseError(ErrorCodes.NOT_FOUND, message, hint);
export const bodyTooLarge = (message: string, hint?: string) => new ShardwiseError(ErrorCodes.BODY_TOO_LARGE, message, hint);
export const modelManifestError = (file: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.MODEL_MANIFEST, `${file}: ${message}`, hint);
export const modelTensorError = (file: string, tensor: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.MODEL_TENSOR, `${file}: tensor '${tensor}': ${message}`, hint);
export const importError = (file: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.IMPORT_FORMAT, `${file}: ${message}`, hint);
export const traceError = (file: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.TRACE_FORMAT, `${file}: ${message}`, hint);
export const profileError = (file: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.PROFILE_FORMAT, `${file}: ${message}`, hint);
export const costModelError = (source: string, message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.COST_MODEL, `${source}: ${message}`, hint);
