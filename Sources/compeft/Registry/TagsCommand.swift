import ArgumentParser
import Exchange
import Foundation

struct TagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tags",
        abstract: "List the tags of a repository on an OCI registry.",
        discussion: """
            Follows the registry's pagination to the end and sorts the tags. Signature tags (sha256-<digest>.sig) are left out \
            unless --all is given.

            Example:
              compeft tags localhost:5000/experts/sentiment
            """)

    @Argument(help: "registry/repository (a tag or digest is ignored)")
    var repository: String

    @Flag(help: "Also list signature tags (sha256-<digest>.sig).")
    var all = false

    @OptionGroup(title: "Registry") var registryOptions: RegistryOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.setUp()
        let ref = try Reference(parsing: repository.hasPrefix("oci://") ? String(repository.dropFirst(6)) : repository)
        let registry = registryOptions.makeRegistry()
        var tags = try registry.tags(ref).sorted()
        if !all { tags.removeAll { $0.hasPrefix("sha256-") && $0.hasSuffix(".sig") } }
        if common.json {
            Terminal.out(Terminal.json(["repository": ref.repositoryName, "tags": tags] as [String: Any]))
        } else if !tags.isEmpty {
            Terminal.out(tags.joined(separator: "\n"))
        }
    }
}
