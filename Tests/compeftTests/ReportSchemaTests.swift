import Foundation
import Testing

/// Every `--json` report against its JSON Schema in `docs/schemas/` (issue 17 §4): real reports of every
/// command and of its variants (global and tensor scope, folder, file and HDF5 outputs, LoRA, (IA)³, residual
/// and full fine-tune merges, a failed verify, errors of each exit code), and reports broken on purpose,
/// which the check must refuse.
@Suite(.requiresPython("jsonschema", install: "pip install jsonschema")) struct ReportSchemaTests {
    /// Runs `compeft arguments…` (which must exit with `status`) and returns its JSON report.
    func report(_ arguments: [String], status: Int32 = 0, fromStderr: Bool = false) throws -> Data {
        let r = try CLI.run(arguments + ["--json"])
        #expect(r.status == status, "\(arguments): \(r.stderr)")
        if fromStderr {
            let text = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
                .drop { !$0.hasPrefix("{") }.joined(separator: "\n")
            return Data(text.utf8)
        }
        return r.stdout
    }

    @Test func everyReportMatchesItsSchema() throws {
        let dir = scratchDirectory("schema-reports")
        var reports: [(schema: String, report: Data)] = []
        func add(_ schema: String, _ arguments: [String], status: Int32 = 0, fromStderr: Bool = false) throws {
            reports.append((schema, try report(arguments, status: status, fromStderr: fromStderr)))
        }
        let lora = fixture("lora-bert-seqcls"), ia3 = fixture("ia3-bert-seqcls"), residual = fixture("residual.safetensors")
        try add("compress", ["compress", lora, "-o", dir + "/lora.cpeft", "--density", "5"])  // drops a module
        try add("compress", ["compress", residual, "-o", dir + "/r.cpeft", "--scope", "tensor"])
        try add("compress", ["compress", fixture("full-ft"), "--base", fixture("tiny-bert"), "-o", dir + "/ft.cpeft"])
        try add("compress", ["compress", ia3, "-o", dir + "/ia3.cpeft", "--method", "stc"])
        for c in ["lora", "r", "ft", "ia3"] {
            try add("inspect", ["inspect", dir + "/\(c).cpeft"])
            try add("verify", ["verify", dir + "/\(c).cpeft"])
        }
        try add("decompress", ["decompress", dir + "/lora.cpeft", "-o", dir + "/lora-out"])
        try add("decompress", ["decompress", dir + "/lora.cpeft", "-o", dir + "/lora.safetensors"])
        try add("decompress", ["decompress", dir + "/r.cpeft", "-o", dir + "/r.h5"])
        try add("decompress", ["decompress", dir + "/ft.cpeft", "-o", dir + "/ft-out"])
        try add("merge", ["merge", lora, lora, "-o", dir + "/m.cpeft", "--method", "ties", "--out-density", "5"])
        try add("merge", ["merge", lora, "-o", dir + "/one", "--rank", "4"])
        try add("merge", ["merge", ia3, ia3, "-o", dir + "/ia3.safetensors", "--weights", "0.5,0.5"])
        try add("merge", ["merge", fixture("full-ft"), fixture("full-ft"), "--base", fixture("tiny-bert"), "-o", dir + "/ft.h5",
                          "--method", "dare-ties", "--seed", "3"])
        try add("analyze", ["analyze", lora, "--densities", "5,20", "--per-tensor", "--target-error", "0.7"])
        try add("analyze", ["analyze", fixture("lora-gpt2-bf16"), "--densities", "5", "--target-error", "0.01"])
        try add("analyze", ["analyze", residual, "--densities", "10", "--scope", "tensor", "--method", "stc"])
        try add("analyze", ["analyze", fixture("full-ft"), "--base", fixture("tiny-bert"), "--densities", "1"])
        try add("keygen", ["keygen", "-o", dir + "/key.pem"])
        // Failures: usage (2), input (3), I/O (4), a failed verify (1: its own report), and an error on
        // stderr when stdout carries the data.
        var bad = try Data(contentsOf: URL(fileURLWithPath: dir + "/r.cpeft"))
        bad[20] ^= 0xFF
        try bad.write(to: URL(fileURLWithPath: dir + "/bad.cpeft"))
        try add("verify", ["verify", dir + "/bad.cpeft"], status: 1)
        try add("error", ["compress", lora, "-o", dir + "/x.cpeft", "--density", "0.2"], status: 2)
        try add("error", ["merge", lora, lora, "-o", dir + "/x", "--election", "frequency"], status: 2)
        try add("error", ["decompress", dir + "/bad.cpeft", "-o", dir + "/x"], status: 3)
        try add("error", ["inspect", dir + "/missing.cpeft"], status: 4)
        try add("error", ["decompress", dir + "/bad.cpeft", "-o", "-"], status: 3, fromStderr: true)
        let problems = try ReportSchemas.violations(reports)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// The check refuses a report that breaks its schema: a missing key, a value of another type, a key the
    /// schema does not know, a value outside its enumeration — each named.
    @Test func aReportThatBreaksItsSchemaIsRefused() throws {
        let dir = scratchDirectory("schema-broken")
        let good = try report(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/a.cpeft"])
        let object = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
        func broken(_ change: (inout [String: Any]) -> Void) throws -> Data {
            var o = object
            change(&o)
            return try JSONSerialization.data(withJSONObject: o)
        }
        let cases: [(String, Data)] = [
            ("'ratio' is a required property", try broken { $0["ratio"] = nil }),
            ("is not of type 'integer'", try broken {
                var tensors = $0["tensors"] as! [[String: Any]]
                tensors[0]["count"] = "512"
                $0["tensors"] = tensors
            }),
            ("Additional properties are not allowed ('surprise' was unexpected)", try broken { $0["surprise"] = 1 }),
            ("is not one of ['global', 'tensor']", try broken {
                var c = $0["compression"] as! [String: Any]
                c["scope"] = "layer"
                $0["compression"] = c
            }),
        ]
        #expect(try ReportSchemas.violations([("compress", good)]).isEmpty)
        for (message, data) in cases {
            let problems = try ReportSchemas.violations([("compress", data)])
            #expect(problems.count == 1 && problems.first?.contains(message) == true, "expected '\(message)': \(problems)")
        }
    }
}
