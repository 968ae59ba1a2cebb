/**
 * Log lines for services and the supervisor: `<ISO time> <level> <who> <message>`, one line
 * each, on stderr. Writing a log line never throws and never kills a process: a closed pipe
 * (`serve … | head`) turns logging off instead (see guardStdio).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  readonly who: string;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

let stdioGuarded = false;
let stderrOpen = true;

/**
 * Makes stdout and stderr safe to write after their reader has gone: Node reports EPIPE as an
 * 'error' event on the stream, and an unhandled one kills the process (and with the
 * supervisor, every child). A broken stream is dropped; the process keeps serving.
 */
export function guardStdio(): void {
  if (stdioGuarded) return;
  stdioGuarded = true;
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {
    stderrOpen = false;
  });
}

export function logLine(level: LogLevel, who: string, message: string): string {
  return `${new Date().toISOString()} ${level.padEnd(5)} ${who} ${message.replaceAll('\n', '\n    ')}\n`;
}

/** `who` names the service and replica, e.g. `shard-1/0` or `supervisor`. */
export function createLogger(who: string, write: (line: string) => void = (l) => stderrOpen && process.stderr.write(l)): Logger {
  guardStdio();
  const at = (level: LogLevel) => (message: string) => {
    try {
      write(logLine(level, who, message));
    } catch {
      // A synchronous write to a closed descriptor: the log is gone, the service is not.
    }
  };
  return { who, info: at('info'), warn: at('warn'), error: at('error') };
}

/** For tests and embedded use: every line dropped. */
export const silentLogger: Logger = { who: 'silent', info: () => {}, warn: () => {}, error: () => {} };
