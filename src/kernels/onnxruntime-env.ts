/**
 * onnxruntime 1.29+ ships Microsoft's 1DS telemetry on Linux: every process that creates a
 * session writes an empty /tmp/mat-debug-<pid>.log, a device id and an offline event store
 * (megabytes, growing) under ~/.cache/Microsoft, and uploads events wherever it has a route
 * out. A serving replica must do none of that, so ORT_DISABLE_TELEMETRY=1 (its full opt-out,
 * read once when the library initializes) is set before onnxruntime-node is imported; an
 * operator's own setting of the variable is kept.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';
