import Logging

/// The process-wide logger, configured once by the root command's options.
enum Log {
    nonisolated(unsafe) static var logger = Logger(label: "compeft")

    static func configure(verbose: Bool, quiet: Bool) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : (quiet ? .error : .warning)
            return handler
        }
        logger = Logger(label: "compeft")
        logger.logLevel = verbose ? .debug : (quiet ? .error : .warning)
    }
}
