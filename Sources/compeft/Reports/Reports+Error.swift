import Commands

extension Reports {
    /// The JSON error report of a failed command (``CommandReports/error(_:exitCode:status:message:)``)
    /// with the process's exit status.
    static func error(_ error: any Error, status: ExitStatus, message: String) -> [String: Any] {
        CommandReports.error(error, exitCode: status.rawValue, status: status.name, message: message)
    }
}
