/** How a query ended, as the load generator counts it. */
export type Outcome = 'ok' | 'rejected' | 'errors' | 'timeouts';

/** One of the load generator's HTTP clients: sends one query; calls `finish` exactly once. */
export interface Sender {
  send(query: { body: Buffer; headerLength: string }, finish: (outcome: Outcome, detail?: string) => void): void;
  close(): Promise<void>;
}

export const outcomeOf = (status: number): Outcome => (status === 200 ? 'ok' : status === 429 ? 'rejected' : 'errors');
