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
  /** An inference request is malformed (shape, range, non-finite value). */
  BAD_REQUEST: 'SW_BAD_REQUEST',
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
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

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

export const badArgument = (message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.BAD_ARGUMENT, message, hint);
export const badRequest = (message: string, hint?: string) =>
  new ShardwiseError(ErrorCodes.BAD_REQUEST, message, hint);
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
