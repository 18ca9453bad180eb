import AdapterFormat
import TaskVector

/// What `verify` found: every checksum of a container checked and every payload decoded.
public struct ContainerVerification: Sendable {
    /// The container's name as the caller gave it.
    public var file: String
    /// One line per problem, naming the file or tensor; empty when the container is intact.
    public var problems: [String]
    /// Payloads checked: tensors and verbatim files.
    public var checked: Int

    /// Checks the container at `path` (`-`: standard input).
    ///
    /// A file that is not an intact container is a finding (a problem), not a failure.
    ///
    /// - Throws: ``FormatError`` (`.io`) when the file cannot be read at all.
    public init(path: String) throws {
        file = path
        let reader: ContainerReader
        do {
            reader = try ContainerReader(path: path)
        } catch let e as FormatError where e.code != .io {
            problems = [e.description]
            checked = 0
            return
        }
        var problems: [String] = []
        for f in reader.index.files {
            do { _ = try reader.contents(of: f) } catch { problems.append("\(error)") }
        }
        do { _ = try reader.checkedAdapterConfig() } catch let error as TaskVectorError {
            problems.append("\(error)")  // a config that disagrees with the tensors
        } catch {}  // its payload cannot be read: reported above
        for t in reader.index.tensors {
            do { try reader.verify(t) } catch { problems.append("\(error)") }
        }
        self.problems = problems
        checked = reader.index.tensors.count + reader.index.files.count
    }
}
