import { z } from 'zod';
import { labelSchema } from '../../text/label.ts';

/**
 * The `gpio` section of the box configuration. Lines are BCM numbers, i.e. offsets on the
 * header's gpiochip (pinctrl-bcm2711 / -bcm2835 / -rp1).
 */
export const gpioBiasSchema = z.enum(['as-is', 'pull-up', 'pull-down', 'disabled']);
export type GpioBias = z.infer<typeof gpioBiasSchema>;

export const gpioInputModeSchema = z.enum(['level', 'toggle', 'start_stop', 'marker', 'sync']);
export type GpioInputMode = z.infer<typeof gpioInputModeSchema>;

const lineNumber = z.number().int().min(0).max(511);

const gpioInputRawSchema = z.strictObject({
  line: lineNumber,
  mode: gpioInputModeSchema.default('level'),
  active_low: z.boolean().default(false),
  /** Unset: pull towards the inactive level (pull-up when active_low), so an unplugged cable reads inactive. */
  bias: gpioBiasSchema.optional(),
  /**
   * Edges must hold this long to count (debounced by rigcam on raw kernel edges, so a change keeps the interrupt time
   * of its first edge). Default 5, and 0 for mode `sync`: a sync line's edges are stored as the kernel stamped them,
   * filtered only when the wiring needs it.
   */
  debounce_ms: z.number().min(0).max(1000).optional(),
  /** Active pulses shorter than this are ignored; actions wait for it and keep the original edge time. */
  min_pulse_ms: z.number().min(0).max(60_000).default(0),
  /** Marker label (mode `marker`); defaults to `gpio<line>`. */
  label: labelSchema(64).min(1).optional(),
  /** The line that stops recording in mode `start_stop` (same polarity, bias and timing as `line`). */
  stop_line: lineNumber.optional(),
});

export const gpioInputSchema = gpioInputRawSchema
  .superRefine((input, ctx) => {
    if (input.mode === 'start_stop' && input.stop_line === undefined) {
      ctx.addIssue({ code: 'custom', message: 'mode start_stop needs stop_line', path: ['stop_line'] });
    }
    if (input.mode !== 'start_stop' && input.stop_line !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'stop_line is only used by mode start_stop', path: ['stop_line'] });
    }
    if (input.mode === 'sync' && input.min_pulse_ms > 0) {
      ctx.addIssue({ code: 'custom', message: 'min_pulse_ms is not used by mode sync (every edge is stored)', path: ['min_pulse_ms'] });
    }
    if (input.stop_line === input.line) {
      ctx.addIssue({ code: 'custom', message: 'stop_line must differ from line', path: ['stop_line'] });
    }
  })
  .transform((input) => ({
    ...input,
    debounce_ms: input.debounce_ms ?? (input.mode === 'sync' ? 0 : 5),
    bias: input.bias ?? (input.active_low ? ('pull-up' as const) : ('pull-down' as const)),
  }));
export type GpioInputConfig = z.output<typeof gpioInputSchema>;

export const gpioOutputSchema = z.strictObject({
  line: lineNumber,
  active_low: z.boolean().default(false),
});
export type GpioOutputConfig = z.output<typeof gpioOutputSchema>;

/**
 * A sync pulse train out (role `sync_out`): Rsync-style random intervals between pulse onsets, drawn uniformly in
 * [min_interval_ms, max_interval_ms] from a seeded generator (the seed is stored with the run), or a fixed rate.
 * Intervals are measured onset to onset; each pulse lasts pulse_ms.
 */
export const syncOutSchema = z
  .strictObject({
    line: lineNumber,
    active_low: z.boolean().default(false),
    pattern: z.enum(['random', 'fixed']).default('random'),
    min_interval_ms: z.number().int().min(50).max(60_000).default(100),
    max_interval_ms: z.number().int().min(50).max(60_000).default(1000),
    /** Pattern `fixed`: onset to onset. */
    period_ms: z.number().int().min(50).max(60_000).default(1000),
    pulse_ms: z.number().int().min(5).max(10_000).default(30),
    /** Unset: a fresh seed per start (stored with the run, so a train can be regenerated). */
    seed: z.number().int().min(0).max(0xffffffff).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.min_interval_ms > o.max_interval_ms)
      ctx.addIssue({ code: 'custom', message: 'min_interval_ms must not exceed max_interval_ms', path: ['min_interval_ms'] });
    const shortest = o.pattern === 'fixed' ? o.period_ms : o.min_interval_ms;
    // Each edge restarts a gpioset: leave the line at least as long idle as active.
    if (o.pulse_ms * 2 > shortest)
      ctx.addIssue({ code: 'custom', message: `pulse_ms must be at most half the shortest interval (${shortest} ms)`, path: ['pulse_ms'] });
  });
export type SyncOutConfig = z.output<typeof syncOutSchema>;

export const gpioConfigSchema = z
  .strictObject({
    backend: z.enum(['gpiod', 'sysfs']).default('gpiod'),
    /** Chip name (`gpiochip0`), or `auto`: the chip whose label is a Raspberry Pi header controller. */
    chip: z.string().regex(/^(auto|gpiochip\d+)$/, 'gpiochipN or auto').default('gpiochip0'),
    inputs: z.array(gpioInputSchema).default([]),
    outputs: z
      .strictObject({
        /** Held active while any camera records. */
        recording: gpioOutputSchema.optional(),
        /** Steady when ready, blinking on error. */
        status_led: gpioOutputSchema.optional(),
        /** Emits a sync pulse train while the box runs (every edge stored with its set time). */
        sync_out: syncOutSchema.optional(),
      })
      .default({}),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<number, string>();
    const claim = (line: number, what: string, path: (string | number)[]) => {
      const prev = seen.get(line);
      if (prev) ctx.addIssue({ code: 'custom', message: `line ${line} is used by both ${prev} and ${what}`, path });
      else seen.set(line, what);
    };
    cfg.inputs.forEach((input, i) => {
      claim(input.line, `inputs[${i}]`, ['inputs', i, 'line']);
      if (input.stop_line !== undefined) claim(input.stop_line, `inputs[${i}].stop_line`, ['inputs', i, 'stop_line']);
    });
    if (cfg.outputs.recording) claim(cfg.outputs.recording.line, 'outputs.recording', ['outputs', 'recording', 'line']);
    if (cfg.outputs.status_led) claim(cfg.outputs.status_led.line, 'outputs.status_led', ['outputs', 'status_led', 'line']);
    if (cfg.outputs.sync_out) claim(cfg.outputs.sync_out.line, 'outputs.sync_out', ['outputs', 'sync_out', 'line']);
  });

export type GpioConfig = z.output<typeof gpioConfigSchema>;
export type GpioConfigInput = z.input<typeof gpioConfigSchema>;
