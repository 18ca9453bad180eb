import Fixtures
import Foundation
import TaskVector
import Testing

/// Inputs that disagree with themselves (issue 16 §6): a LoRA config whose `r`, `rank_pattern` or
/// `alpha_pattern` PEFT would refuse, or that disagrees with the tensors, and JSON numbers that do
/// not fit their field, reported naming the field.
@Suite struct InconsistentInputTests {
    static func config(_ fields: String, type: String = "LORA") -> [UInt8] {
        Array(#"{"peft_type": "\#(type)", "target_modules": ["query", "value"]\#(fields.isEmpty ? "" : ", " + fields)}"#.utf8)
    }

    // MARK: - adapter_config.json fields

    @Test(arguments: [
        (#""r": 0"#, "r is 0; a LoRA rank must be a positive integer (PEFT refuses 0 too)"),
        (#""r": -3"#, "r is -3; a LoRA rank must be a positive integer"),
        (#""r": 8.5"#, "r must be a positive integer, got 8.5"),
        (#""r": 8.0"#, "r must be a positive integer, got 8.0"),
        (#""r": "8""#, "r must be a positive integer, got a string"),
        (#""r": true"#, "r must be a positive integer, got true or false"),
        (#""r": 18446744073709551616"#, "r is 18446744073709551616, out of range: too large for 64 bits"),
        (#""r": 9223372036854775808"#, "r is 9223372036854775808, out of range"),
        (#""r": 4294967296"#, "r is 4294967296, out of range (a rank is at most 2147483647)"),
        (#""r": 1e400"#, "field 'r' is 1e400, out of range: too large for a 64-bit float"),
        (#""lora_alpha": "16""#, "lora_alpha must be a number, got a string"),
        (#""rank_pattern": [4]"#, "rank_pattern must be an object of module patterns, got a list"),
        (#""rank_pattern": {"query": 0}"#, "rank_pattern['query'] is 0; a LoRA rank must be a positive integer"),
        (#""rank_pattern": {"query": 99999999999999999999999}"#, "rank_pattern['query'] is 99999999999999999999999, out of range"),
        (#""alpha_pattern": {"query": "16"}"#, "alpha_pattern['query'] must be a number, got a string"),
        (#""alpha_pattern": {"(query": 16}"#, "alpha_pattern key '(query' is not a valid regular expression"),
    ])
    func loraConfigFieldsPEFTWouldRefuseAreRefusedNamingTheField(fields: String, message: String) {
        let error = expectTaskVectorError(.malformed) { _ = try AdapterConfig(bytes: Self.config(fields), path: "a/adapter_config.json") }
        #expect(error?.file == "a/adapter_config.json")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func otherPEFTTypesKeepTheirOwnFields() throws {
        // (IA)³ has no rank; AdaLoRA's rank_pattern is a mask per module, not a rank.
        _ = try AdapterConfig(bytes: Self.config(#""r": 0"#, type: "IA3"), path: "c")
        _ = try AdapterConfig(bytes: Self.config(#""rank_pattern": {"q": [true, false]}"#, type: "ADALORA"), path: "c")
    }

    // MARK: - Ranks against tensor shapes

    static let tensors: [(name: String, shape: [Int])] = [
        ("base_model.model.bert.layer.0.attention.query.lora_A.weight", [8, 64]),
        ("base_model.model.bert.layer.0.attention.query.lora_B.weight", [64, 8]),
        ("base_model.model.bert.layer.0.attention.value.lora_A.weight", [4, 64]),
        ("base_model.model.bert.layer.0.attention.value.lora_B.weight", [64, 4]),
        ("base_model.model.bert.embeddings.word_embeddings.lora_embedding_A", [8, 512]),
        ("base_model.model.bert.embeddings.word_embeddings.lora_embedding_B", [64, 8]),
        ("base_model.model.conv.lora_A.weight", [8, 3, 3, 3]),
        ("base_model.model.conv.lora_B.weight", [16, 8, 1, 1]),
        ("base_model.model.classifier.weight", [3, 64]),
    ]

    @Test func ranksThatAgreeWithRAndRankPatternAreAccepted() throws {
        let config = try AdapterConfig(bytes: Self.config(#""r": 8, "rank_pattern": {"value": 4}"#), path: "c")
        try config.checkRanks(Self.tensors, file: "c")
        // Absent r is PEFT's default, 8.
        try AdapterConfig(bytes: Self.config(#""rank_pattern": {"value": 4}"#), path: "c").checkRanks(Self.tensors, file: "c")
    }

    @Test(arguments: [
        (#""r": 4"#, "query.lora_A.weight", "has rank 8 (shape [8, 64]) but adapter_config.json says r = 4"),
        (#""r": 8"#, "value.lora_A.weight", "has rank 4 (shape [4, 64]) but adapter_config.json says r = 8"),
        (#""r": 8, "rank_pattern": {"value": 2}"#, "value.lora_A.weight", "has rank 4 (shape [4, 64]) but adapter_config.json says rank_pattern['value'] = 2"),
        (#""rank_pattern": {"query": 8}"#, "value.lora_A.weight", "has rank 4 (shape [4, 64]) but adapter_config.json says no r (PEFT's default is 8)"),
        (#""r": 4, "rank_pattern": {"value": 4, "query": 8, "word_embeddings": 8}"#, "conv.lora_A.weight", "has rank 8 (shape [8, 3, 3, 3]) but adapter_config.json says r = 4"),
        (#""r": 8, "rank_pattern": {"value": 4, "attention.value": 2}"#, "value.lora_A.weight", "gives module 'bert.layer.0.attention.value' two ranks"),
    ])
    func rankThatDisagreesWithTheTensorsIsRefusedNamingBoth(fields: String, tensor: String, message: String) throws {
        let config = try AdapterConfig(bytes: Self.config(fields), path: "c")
        let error = expectTaskVectorError(.mismatch) { try config.checkRanks(Self.tensors, file: "x/adapter_config.json") }
        #expect(error?.file == "x/adapter_config.json")
        #expect(error?.tensor?.hasSuffix(tensor) == true, "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func targetParametersStackOneRankBlockPerExpert() throws {
        let experts = [("base_model.model.mlp.experts.lora_A.weight", [32, 64]), ("base_model.model.mlp.experts.lora_B.weight", [64, 32])]
        let config = try AdapterConfig(bytes: Self.config(#""r": 8, "target_parameters": ["mlp.experts.gate_up_proj"]"#), path: "c")
        try config.checkRanks(experts.map { ($0.0, $0.1) }, file: "c")
        let odd = try AdapterConfig(bytes: Self.config(#""r": 5, "target_parameters": ["mlp.experts.gate_up_proj"]"#), path: "c")
        _ = expectTaskVectorError(.mismatch) { try odd.checkRanks(experts.map { ($0.0, $0.1) }, file: "c") }
    }

    @Test func adapterFolderWhoseConfigDisagreesWithItsWeightsIsRefused() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: Fixtures.path("lora-bert-seqcls/adapter_model.safetensors"), toPath: folder + "/adapter_model.safetensors")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lora-bert-seqcls/adapter_config.json")))) as? [String: Any])
        #expect(config["r"] as? Int == 8)
        config["r"] = 16
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: folder + "/adapter_config.json"))
        let error = expectTaskVectorError(.mismatch) { _ = try TaskVectorInput.load(path: folder) }
        #expect(error?.file == folder + "/adapter_config.json")
        #expect(error?.message.contains("has rank 8 (shape [8, 64]) but adapter_config.json says r = 16") == true, "\(String(describing: error))")
    }

    // MARK: - JSON numbers that do not fit their field

    struct Index: Decodable {
        struct Entry: Decodable {
            var name: String
            var offset: Int
            var scale: Float
            var seed: UInt64?
        }
        var version: Int
        var entries: [Entry]
    }

    static func index(offset: String = "16", scale: String = "0.5", seed: String = "1") -> [UInt8] {
        Array(#"{"version": 1, "entries": [{"name": "a", "offset": 0, "scale": 1, "seed": 2}, {"name": "b", "offset": \#(offset), "scale": \#(scale), "seed": \#(seed)}]}"#.utf8)
    }

    @Test(arguments: [
        (index(offset: "18446744073709551616"), "field 'entries[1].offset' is 18446744073709551616, out of range: too large for 64 bits"),
        (index(offset: "9223372036854775808"), "field 'entries[1].offset' is 9223372036854775808, out of range (the largest accepted is 9223372036854775807)"),
        (index(offset: "-99999999999999999999"), "field 'entries[1].offset' is -99999999999999999999, out of range: too large for 64 bits"),
        (index(offset: "1.5"), "field 'entries[1].offset' is 1.5, which this field does not accept (it needs an integer)"),
        (index(scale: "1e400"), "field 'entries[1].scale' is 1e400, out of range: too large for a 64-bit float"),
        (index(seed: "18446744073709551616"), "field 'entries[1].seed' is 18446744073709551616, out of range: too large for 64 bits"),
        (Array(#"{"version": "1", "entries": []}"#.utf8), "field 'version' must be an integer"),
        (Array(#"{"version": 1}"#.utf8), "field 'entries' is missing"),
        (Array(#"{"version": 1, "entries": [}"#.utf8), "not valid JSON"),
    ])
    func decodingErrorsNameTheFieldAndSayWhatIsWrong(json: [UInt8], message: String) {
        do {
            _ = try JSONDecoder().decode(Index.self, from: Data(json))
            Issue.record("decoded")
        } catch {
            let explained = JSONDiagnosis.explain(error, in: json, as: Index.self)
            #expect(explained.hasPrefix(message), "\(explained)")
        }
    }

    @Test func aSeedThatFitsUInt64IsNotBlamed() throws {
        // 2⁶⁴ − 1 fits the UInt64 field; the culprit is the offset after it.
        let json = Self.index(offset: "18446744073709551615", seed: "18446744073709551615")
        do {
            _ = try JSONDecoder().decode(Index.self, from: Data(json))
            Issue.record("decoded")
        } catch {
            #expect(JSONDiagnosis.explain(error, in: json, as: Index.self).hasPrefix("field 'entries[1].offset'"))
        }
    }

    @Test func safetensorsShapeBeyond64BitsSaysOutOfRange() throws {
        let bytes = rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let error = expectTaskVectorError(.malformed) { _ = try SafeTensorsFile(file: MappedFile(path: "t.safetensors", contents: bytes)) }
        #expect(error?.message.contains("18446744073709551616 is out of range: too large for a 64-bit integer") == true, "\(String(describing: error))")
    }
}
