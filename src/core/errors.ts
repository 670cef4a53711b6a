// Typed errors thrown by the library. Only the CLI turns them into one-line messages and exit codes.

/** Bad input: a scenario, an option or a parameter that cannot be used. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    /** Where the bad input came from: a file name or an option like --tsc-khz. */
    readonly where?: string,
    /** Path inside that input, e.g. hosts[1].tsc.freq_khz. */
    readonly path?: string,
  ) {
    super(message);
  }
}

/** A needed facility (a device node, a program, a permission) is missing or unusable. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}
