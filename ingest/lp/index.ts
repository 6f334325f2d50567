/**
 * The line-protocol decoder: `parseLineProtocol(body, options)` turns a request body into one
 * columnar batch per measurement and a list of rejected entries (physical line, reason, text).
 * Modules: bytes (constants, hashing, comparisons), names (escapes per element), numbers
 * (float/int/uint/timestamp readers), precision, byte-table (raw-bytes hash table), series-cache
 * (decoded series keys shared across requests), columns and measurement (the batch builders),
 * skip (error recovery), parse (the scanner itself).
 */
export { type LineError, type ParseOptions, type ParseResult, LP_LIMITS, PRECISIONS, type Precision, fieldColumnName, isPrecision, parseLineProtocol } from "./parse.js";
export { SERIES_KEY_CACHE_DEFAULTS, SeriesKeyCache, type SeriesKeyCacheOptions, sharedSeriesKeys } from "./series-cache.js";
