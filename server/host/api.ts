/**
 * `krypton` (the package's main entry): running hosts from code. `Host.start(config, { services })`
 * with a Config made by `defaultConfig()` or from `krypton host` flags by `parseHostArgs`; the
 * same as the `krypton host` command, without a process of its own.
 */

export { type Config, defaultConfig, parseHostArgs } from '../base/config.js';
export { Host, type HostOptions } from './host.js';
