/**
 * The line-protocol decoder: `parseLineProtocol(body, options)` turns a request body into one
 * columnar batch per measurement and a list of rejected entries (physical line, reason, text).
 *
 * Modules: parse (the body loop: lines, entries, fields, staging), series-key (raw series key →
 * decoded, cached series), column-resolver (field key → column, against the schema and its
 * limits), strings, numbers, booleans and timestamps (value readers), searches (cached native
 * searches over the body), rejection (reasons, error recovery, error text), batch-budget (the
 * batches' size limit), measurement and columns (the batch builders), names (escapes per
 * element), bytes (constants, hashing), byte-table (raw-bytes hash table), series-cache (decoded
 * series keys shared across requests), precision, limits.
 */
export { type ParseOptions, type ParseResult, parseLineProtocol } from "./parse.js";
export { type LineError, MAX_LISTED_LINE_ERRORS } from "./rejection.js";
export { LP_LIMITS } from "./limits.js";
export { fieldColumnName } from "./column-resolver.js";
export { PRECISIONS, type Precision, isPrecision } from "./precision.js";
export { SERIES_KEY_CACHE_DEFAULTS, SeriesKeyCache, type SeriesKeyCacheOptions, sharedSeriesKeys } from "./series-cache.js";
