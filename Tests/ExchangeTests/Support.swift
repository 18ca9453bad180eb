import AdapterFormat
@_exported import CompeftTestSupport
import Exchange
import Fixtures
import Foundation
import Quantize
import TaskVector

/// Containers made from the shipped fixtures, once per test process.
enum Experts {
    /// (name, container path) for every fixture compeft compresses, plus the committed containers.
    static let all: [(String, String)] = {
        let dir = scratchDirectory("experts")
        var out: [(String, String)] = []
        let inputs: [(String, String?)] = [
            ("lora-bert-seqcls", nil), ("lora-gpt2-bf16", nil), ("ia3-bert-seqcls", nil), ("ia3-gpt2-f16", nil),
            ("residual.safetensors", nil), ("full-ft", "tiny-bert"),
        ]
        for (name, base) in inputs {
            let path = dir + "/" + name + ".cpeft"
            let input = try! TaskVectorInput.load(path: Fixtures.path(name), base: base.map(Fixtures.path))
            _ = try! AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: path))
            out.append((name, path))
        }
        for name in ["ia3-gpt2-f16-v1.0.cpeft", "lora-bert-seqcls-v1.0.cpeft"] {
            out.append((name, Fixtures.path("containers/" + name)))
        }
        return out
    }()

    static func path(_ name: String) -> String { all.first { $0.0 == name }!.1 }

    /// A residual file of `count` seeded random f32 values compressed at `density` %: a container large
    /// enough for chunked uploads and partial downloads.
    static func large(count: Int, tensors: Int = 1, density: Double, seed: UInt64) throws -> String {
        let dir = scratchDirectory("large")
        var rng = SplitMix64(seed: seed)
        var entries: [SafeTensorsWriter.Entry] = []
        for k in 0..<tensors {
            var values = [Float](repeating: 0, count: count)
            for i in values.indices { values[i] = Float(Int64(rng.next() >> 11) - (1 << 52)) / Float(1 << 52) }
            entries.append(SafeTensorsWriter.Entry(name: "w\(k)", dtype: .f32, shape: [count]) { sink in try values.withUnsafeBytes { try sink($0) } })
        }
        let writer = try AtomicFileWriter(path: dir + "/large.safetensors")
        try SafeTensorsWriter.write(entries, to: writer)
        try writer.commit()
        let input = try TaskVectorInput.load(path: dir + "/large.safetensors")
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(density)), to: AtomicFileWriter(path: dir + "/large.cpeft"))
        return dir + "/large.cpeft"
    }
}

/// A registry client for `server`, with its own cache folder and credentials only from `environment`.
func makeRegistry(cache: Bool = true, environment: [String: String] = [:], plainHTTP: Bool = false, chunkSize: Int? = nil,
                  attempts: Int = 3) -> ExpertRegistry {
    var o = RegistryClient.Options()
    o.credentials = CredentialStore(environment: environment)
    o.plainHTTP = plainHTTP
    o.backoff = 0.05
    o.attempts = attempts
    o.timeout = 20
    if let chunkSize { o.chunkSize = chunkSize }
    return ExpertRegistry(options: o, cache: cache ? BlobCache(root: scratchDirectory("cache")) : nil)
}

func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }
