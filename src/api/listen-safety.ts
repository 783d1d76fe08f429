import type { Config } from '../config/schema.ts';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * The box films people: it does not listen beyond loopback without a token, refused before anything starts. Apart
 * from server.ts so that `serve` can check it first and load the API's module graph while its cameras start.
 */
export function checkListenSafety(config: Config): void {
  if (!LOOPBACK.test(config.http.host) && !config.http.token)
    throw new Error(`refusing to listen on ${config.http.host} without http.token: set a token (16+ characters) or listen on 127.0.0.1`);
}
