export { SerialTrigger, type SerialTriggerEvents, type SerialTriggerOptions } from './serial-trigger.ts';
export { serialConfigSchema, type SerialConfig, type SerialConfigInput } from './serial-config.ts';
export { LineSplitter, type LineEvent, type LineErrorReason } from './line-splitter.ts';
export { FloodLimiter, type Admission, type Refusal } from './flood-limiter.ts';
export { parseSerialLine, jsonLineSchema, type SerialRequest, type TextVerb } from './command-line.ts';
export { errLine, jsonReply, textReply, summarizeData } from './reply-format.ts';
export { serialBinding, HangupError } from './hangup-safe-binding.ts';
