/** The line-protocol decoder's public surface. */
export {
    type LineError,
    type ParseOptions,
    type ParseResult,
    LP_LIMITS,
    PRECISIONS,
    type Precision,
    fieldColumnName,
    isPrecision,
    parseLineProtocol,
} from "./parse.js";
