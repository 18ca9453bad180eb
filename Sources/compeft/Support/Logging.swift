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

/// Options every command takes.
import ArgumentParser

struct CommonOptions: ParsableArguments {
    @Flag(name: .long, help: "Print only errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log what compeft is doing to stderr.")
    var verbose = false

    @Flag(name: .long, help: "Print a JSON report on stdout (stderr when the output itself goes to stdout).")
    var json = false

    func setUp() { Log.configure(verbose: verbose, quiet: quiet) }
}
