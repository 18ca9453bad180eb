/// The file sink: bytes go to a temporary file beside the destination, renamed into place on commit.
extension AtomicFileWriter: ByteSink {
    /// The destination path (``path``).
    public var name: String { path }
}
