import ArgumentParser

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Flag(name: .long, help: "Print only errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log what compeft is doing to stderr.")
    var verbose = false

    @Flag(name: .long, help: "Print a JSON report on stdout (stderr when the output itself goes to stdout).")
    var json = false

    func setUp() { Log.configure(verbose: verbose, quiet: quiet) }
}
