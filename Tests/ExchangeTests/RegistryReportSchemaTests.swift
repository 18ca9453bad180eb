import CompeftTestSupport
import Foundation
import Testing

/// The `--json` reports of the registry commands (`push`, `tags`, `pull`, `keygen`) against their schemas
/// in `docs/schemas/` (issue 17 §4), from the built `compeft` talking to a real registry.
@Suite(.serialized) struct RegistryReportSchemaTests {
    @Test(.requiresPython("jsonschema", install: "pip install jsonschema"))
    func registryReportsMatchTheirSchemas() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let cli = builtProduct("compeft")
        let dir = scratchDirectory("registry-schemas")
        let expert = Experts.path("lora-bert-seqcls")
        let ref = "\(server.address)/experts/schema:v1"
        let cache = ["--cache", dir + "/cache"]
        var reports: [(schema: String, report: Data)] = []
        func add(_ schema: String, _ arguments: [String]) {
            let r = Tool.run(cli, arguments + ["--json"])
            #expect(r.status == 0, "\(arguments): \(r.stderr)")
            reports.append((schema, r.stdout))
        }
        add("keygen", ["keygen", "-o", dir + "/key.pem"])
        add("push", ["push", expert, ref, "--sign-key", dir + "/key.pem"] + cache)  // signed
        add("push", ["push", expert, ref] + cache)  // again: nothing uploaded
        add("tags", ["tags", "\(server.address)/experts/schema"] + cache)
        add("pull", ["pull", ref, "-o", dir + "/pulled.cpeft", "--verify-key", dir + "/key.pub"] + cache)
        add("pull", ["pull", ref, "-o", dir + "/again.cpeft"] + cache)  // from the cache
        let problems = try ReportSchemas.violations(reports)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}
