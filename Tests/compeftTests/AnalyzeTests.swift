import Foundation
import FoundationXML
import Testing

@Suite struct AnalyzeTests {
    /// A JSON number as Double; `nil` for null or a missing key.
    func number(_ any: Any?) -> Double? {
        guard let n = any as? NSNumber, !(any is NSNull) else { return nil }
        return n.doubleValue
    }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.stderr)")
    }

    func close(_ got: Any?, _ want: Double?, _ context: String, tolerance: Double = 1e-9) {
        let g = number(got)
        switch (g, want) {
        case (nil, nil): break
        case let (g?, w?): #expect(abs(g - w) <= tolerance * max(1, abs(w)), "\(context): \(g) vs reference \(w)")
        default: #expect(Bool(false), "\(context): \(String(describing: g)) vs reference \(String(describing: want))")
        }
    }

    /// ε comes from streamed sums: compare ε², good to about 1e-16 of ‖τ‖².
    func closeError(_ got: Any?, _ want: Double?, _ context: String) {
        let g = number(got)
        switch (g, want) {
        case (nil, nil): break
        case let (g?, w?): #expect(abs(g * g - w * w) <= 1e-12 * max(1, w * w), "\(context): \(g) vs reference \(w)")
        default: #expect(Bool(false), "\(context): \(String(describing: g)) vs reference \(String(describing: want))")
        }
    }

    func check(_ o: [String: Any], _ r: ReferenceSweep.Figures, _ context: String) throws {
        #expect(o["count"] as? Int == r.count, "\(context)")
        #expect(o["kept"] as? Int == r.kept, "\(context)")
        #expect(o["kept_nonzero"] as? Int == r.keptNonzero, "\(context)")
        close(o["kept_fraction"], r.count > 0 ? Double(r.keptNonzero) / Double(r.count) : 0, "\(context) kept_fraction")
        close(o["energy_share"], r.energyShare, "\(context) energy_share")
        // JSON carries the binary32 threshold as a double; it must round back to exactly the reference's.
        #expect(number(o["threshold"]).map(Float.init) == r.threshold, "\(context) threshold")
        close(o["sigma"], r.sigma, "\(context) sigma", tolerance: 1e-12)
        let candidates = try #require(o["candidates"] as? [String: Any], "\(context)")
        let pairs: [(String, Any?, ReferenceSweep.Measure)] = [
            ("reconstruction", o["reconstruction"], r.chosen),
            ("norm_preserving", candidates["norm_preserving"], r.normPreserving),
            ("l2_optimal", candidates["l2_optimal"], r.l2Optimal),
            ("alpha_sigma", candidates["alpha_sigma"], r.alphaSigma),
        ]
        for (key, value, want) in pairs {
            let m = try #require(value as? [String: Any], "\(context) \(key)")
            closeError(m["relative_error"], want.error, "\(context) \(key).relative_error")
            close(m["cosine"], want.cosine, "\(context) \(key).cosine")
            close(m["norm_ratio"], want.normRatio, "\(context) \(key).norm_ratio")
            close(m["scale"], want.scale, "\(context) \(key).scale", tolerance: 1e-12)
        }
    }

    static let cases: [(input: String, base: String?, scope: String, method: String, alpha: String)] = [
        ("lora-bert-seqcls", nil, "global", "compeft", "auto"),
        ("lora-bert-seqcls", nil, "tensor", "stc", "auto"),
        ("residual.safetensors", nil, "tensor", "compeft", "2.5"),
        ("residual.safetensors", nil, "global", "stc", "1.5"),
        ("ia3-gpt2-f16", nil, "global", "compeft", "auto"),
        ("full-ft", "tiny-bert", "global", "compeft", "0.5"),
    ]

    @Test(arguments: cases.indices)
    func figuresMatchAPlainReferenceOnFixtures(index: Int) throws {
        let c = Self.cases[index]
        let densities = [1.0, 10, 29, 50, 100]
        var args = ["analyze", fixture(c.input), "--json", "--per-tensor", "--densities", "1,10,29,50,100",
                    "--scope", c.scope, "--method", c.method, "--alpha", c.alpha]
        // The reference is the paper's rule (a scale per selection group, LoRA factors as trained), named.
        args += ["--scale", c.scope] + (c.input.hasPrefix("lora") ? ["--lora-gauge", "trained"] : [])
        if let b = c.base { args += ["--base", fixture(b)] }
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let o = try json(r)
        let parts = try AnalyzeReference.residuals(fixture(c.input), base: c.base.map(fixture))
        #expect(o["residual_values"] as? Int == parts.reduce(0) { $0 + $1.values.count })
        let points = try #require(o["densities"] as? [[String: Any]])
        #expect(points.compactMap { number($0["density"]) } == densities)
        for point in points {
            let k = try #require(number(point["density"]))
            let ref = ReferenceSweep.run(parts.map(\.values), density: k, scope: c.scope, method: c.method,
                                           alpha: Double(c.alpha))
            let context = "\(c.input) \(c.scope) \(c.method) α \(c.alpha) K \(k)"
            try check(point, ref.total, context)
            let tensors = try #require(point["tensors"] as? [[String: Any]])
            #expect(tensors.map { $0["name"] as? String ?? "" } == parts.map(\.name), "\(context)")
            for (t, want) in zip(tensors, ref.tensors) {
                try check(t, want, "\(context) tensor \(t["name"] ?? "")")
            }
        }
    }

    @Test func sizesAreThoseOfTheContainersCompressWrites() throws {
        let dir = scratchDirectory("analyze-sizes")
        for (input, extra) in [("lora-bert-seqcls", ["--scope", "tensor"]), ("residual.safetensors", ["--method", "stc", "--alpha", "2"]),
                               ("ia3-bert-seqcls", [])] {
            let r = try CLI.run(["analyze", fixture(input), "--json", "--per-tensor", "--densities", "2,20"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let o = try json(r)
            #expect(o["input_bytes"] as? Int != nil)
            for point in try #require(o["densities"] as? [[String: Any]]) {
                let k = try #require(number(point["density"]))
                let out = dir + "/\(input)-\(k).cpeft"
                let c = try CLI.run(["compress", fixture(input), "-o", out, "--density", String(k)] + extra)
                #expect(c.status == 0, "\(c.stderr)")
                let size = try #require(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
                #expect(point["container_bytes"] as? Int == size, "\(input) K \(k)")
                let inspect = try json(try CLI.run(["inspect", out, "--json"]))
                let stored = try #require(inspect["tensors"] as? [[String: Any]])
                let payloads = stored.reduce(0) { $0 + ($1["stored_bytes"] as? Int ?? 0) }
                #expect(point["payload_bytes"] as? Int == payloads, "\(input) K \(k)")
                // Per tensor: the stored bytes of the same tensor in the real container.
                let byName = Dictionary(uniqueKeysWithValues: stored.map { ($0["name"] as? String ?? "", $0["stored_bytes"] as? Int ?? -1) })
                let tensors = try #require(point["tensors"] as? [[String: Any]])
                for t in tensors { #expect(t["payload_bytes"] as? Int == byName[t["name"] as? String ?? ""], "\(input) K \(k) \(t["name"] ?? "")") }
                #expect(point["residual_payload_bytes"] as? Int == tensors.reduce(0) { $0 + ($1["payload_bytes"] as? Int ?? 0) })
                let d = Double(try #require(o["residual_values"] as? Int))
                let residualBytes = Double(try #require(point["residual_payload_bytes"] as? Int))
                close(point["bits_per_param"], 8 * residualBytes / d, "bits_per_param")
                close(point["container_bits_per_param"], 8 * Double(size) / d, "container_bits_per_param")
                close(point["ratio_vs_f16"], 2 * d / residualBytes, "ratio_vs_f16")
                close(point["ratio_vs_input"], Double(o["input_bytes"] as? Int ?? 0) / Double(size), "ratio_vs_input")
            }
        }
    }

    @Test func jsonCarriesTheDocumentedKeys() throws {
        let o = try json(try CLI.run(["analyze", fixture("lora-bert-seqcls"), "--json", "--per-tensor", "--densities", "5"]))
        for key in ["input", "input_kind", "peft_type", "input_bytes", "method", "scope", "alpha_requested",
                    "residual_tensors", "residual_values", "f16_bytes", "norm", "densities"] {
            #expect(o[key] != nil, "top level: \(key)")
        }
        #expect(o["alpha_requested"] as? String == "auto" && o["scope"] as? String == "global")
        let point = try #require((o["densities"] as? [[String: Any]])?.first)
        let figures = ["count", "kept", "kept_nonzero", "kept_fraction", "energy_share", "reconstruction", "candidates"]
        for key in figures + ["density", "container_bytes", "payload_bytes", "residual_payload_bytes", "bits_per_param",
                              "container_bits_per_param", "ratio_vs_input", "ratio_vs_f16", "threshold", "sigma", "tensors"] {
            #expect(point[key] != nil, "density: \(key)")
        }
        let reconstructionKeys: Set<String> = ["scale", "relative_error", "cosine", "norm_ratio"]
        #expect(Set((point["reconstruction"] as? [String: Any] ?? [:]).keys) == reconstructionKeys)
        let candidates = try #require(point["candidates"] as? [String: Any])
        #expect(Set(candidates.keys) == ["norm_preserving", "l2_optimal", "alpha_sigma"])
        #expect(Set((candidates["alpha_sigma"] as? [String: Any] ?? [:]).keys) == reconstructionKeys.union(["alpha"]))
        let tensor = try #require((point["tensors"] as? [[String: Any]])?.first)
        for key in figures + ["name", "storage", "payload_bytes", "bits_per_param", "ratio_vs_f16", "threshold", "sigma"] {
            #expect(tensor[key] != nil, "tensor: \(key)")
        }
        // Without --per-tensor there is no breakdown.
        let plain = try json(try CLI.run(["analyze", fixture("lora-bert-seqcls"), "--json", "--densities", "5"]))
        #expect((plain["densities"] as? [[String: Any]])?.first?["tensors"] == nil)
    }

    @Test func textReportHasAlignedTablesWithUnits() throws {
        let r = try CLI.run(["analyze", fixture("lora-bert-seqcls"), "--densities", "1,10", "--per-tensor"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.out
        for needle in ["density", "bits/param", "KiB", "×", "%", "‖τ‖/√n", "mean|kept|", "α·σ, α = 1", "per tensor",
                       "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"] {
            #expect(out.contains(needle), "missing '\(needle)' in:\n\(out)")
        }
        // The rows of the main table line up with its header (right-aligned columns end together).
        let lines = out.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("density") && $0.contains("bits/param") })
        let row = try #require(lines.first { $0.hasPrefix("    1%") || $0.hasPrefix("     1%") })
        #expect(header.count == row.count, "\(header)\n\(row)")
    }

    final class SVGCheck: NSObject, XMLParserDelegate {
        var elements: [String] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) { elements.append(name) }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    @Test func plotIsWellFormedSVGWrittenAtomically() throws {
        let dir = scratchDirectory("analyze-plot")
        // A name with XML specials must come out escaped.
        let input = dir + "/a&b <residual>.safetensors"
        try FileManager.default.copyItem(atPath: fixture("residual.safetensors"), toPath: input)
        let r = try CLI.run(["analyze", input, "--plot", dir + "/plot.svg", "--densities", "1,5,20"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/plot.svg"))
        let parser = XMLParser(data: data)
        let check = SVGCheck()
        parser.delegate = check
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(check.elements.first == "svg")
        #expect(check.elements.filter { $0 == "polyline" }.count == 5, "two size lines and three error lines")
        for needle in ["a&b <residual>.safetensors", "bits per parameter", "relative L2 error", "density K", "1%", "20%",
                       "whole container", "residual payloads", "top-k kept as they are"] {
            #expect(check.text.contains(needle), "missing '\(needle)'")
        }
        // An existing plot needs --force; nothing else is left in the folder.
        let again = try CLI.run(["analyze", input, "--plot", dir + "/plot.svg"])
        #expect(again.status == 4 && again.stderr.contains("--force"), "\(again.stderr)")
        #expect(try CLI.run(["analyze", input, "--plot", dir + "/plot.svg", "--force", "--quiet"]).status == 0)
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(entries == ["a&b <residual>.safetensors", "plot.svg"], "\(entries)")
        // '-' writes the SVG to stdout and the report to stderr.
        let piped = try CLI.run(["analyze", input, "--plot", "-", "--densities", "10"])
        #expect(piped.status == 0 && piped.out.hasPrefix("<?xml") && piped.stderr.contains("density"))
    }

    @Test(arguments: ["0", "101", "-5", "abc", "", " ", ",", "5,,10", "nan", "inf", "10,200"])
    func badDensityListExitsTwoWithAClearMessage(list: String) throws {
        let r = try CLI.run(["analyze", fixture("lora-bert-seqcls"), "--densities", list])
        #expect(r.status == 2, "'\(list)': \(r.stderr)")
        #expect(r.stderr.contains("--densities"), "'\(list)': \(r.stderr)")
        #expect(r.out.isEmpty)
    }

    @Test func otherUsageErrorsExitTwoAndBadInputsThreeOrFour() throws {
        for args in [["--method", "prune"], ["--scope", "layer"], ["--alpha", "0"], ["--plot", ""]] {
            let r = try CLI.run(["analyze", fixture("lora-bert-seqcls")] + args)
            #expect(r.status == 2 && !r.stderr.isEmpty, "\(args): \(r.stderr)")
        }
        #expect(try CLI.run(["analyze", scratchDirectory("missing") + "/nothing"]).status == 4)
        // A plot is an SVG file: another name is refused before any work (issue 17 §3: SVG in x.png).
        let png = try CLI.run(["analyze", fixture("residual.safetensors"), "--plot", scratchDirectory("png") + "/p.png"])
        #expect(png.status == 2 && png.stderr.contains("NAME.svg"), "\(png.stderr)")
        // A plot never lands on the input, even with --force: an input folder named like an SVG file.
        let folder = scratchDirectory("onto") + "/adapter.svg"
        try FileManager.default.copyItem(atPath: fixture("lora-bert-seqcls"), toPath: folder)
        let onto = try CLI.run(["analyze", folder, "--plot", folder, "--force"])
        #expect(onto.status == 4 && onto.stderr.contains("input"), "\(onto.stderr)")
        let help = try CLI.run(["analyze", "--help"])
        #expect(help.status == 0 && help.out.contains("Example:") && help.out.contains("compeft analyze"))
    }

    @Test func densitiesAreSortedAndDeduplicated() throws {
        let o = try json(try CLI.run(["analyze", fixture("lora-bert-seqcls"), "--json", "--densities", "20, 5%,5,1"]))
        #expect((o["densities"] as? [[String: Any]])?.compactMap { number($0["density"]) } == [1, 5, 20])
    }
}
