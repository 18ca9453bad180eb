import AdapterFormat
import Exchange
import Foundation
import TaskVector
import Testing

/// Basic auth against a real htpasswd registry, credentials from the environment and Docker's
/// config.json, Ed25519 keys made by the real `openssl`, signatures, and an independent client.
@Suite(.serialized) struct AuthAndTrustTests {
    static let user = (user: "alice", password: "s3cret-Passw0rd")

    @Test func basicAuthWithRightWrongAndMissingPasswords() throws {
        let server = try RegistryServer(htpasswd: Self.user)
        defer { server.stop() }
        let path = Experts.path("lora-bert-seqcls")
        let ref = try Reference(parsing: "\(server.address)/private/expert:v1")

        let anonymous = makeRegistry()
        let needs = try #require(throws: ExchangeError.self) { try anonymous.push(containerAt: path, to: ref) }
        #expect(needs.code == .unauthorized)
        #expect(needs.description.contains("needs"), "\(needs)")

        let wrong = makeRegistry(environment: ["COMPEFT_REGISTRY_USERNAME": "alice", "COMPEFT_REGISTRY_PASSWORD": "wrong"])
        let refused = try #require(throws: ExchangeError.self) { try wrong.push(containerAt: path, to: ref) }
        #expect(refused.code == .unauthorized)
        #expect(refused.description.contains("refused the credentials from COMPEFT_REGISTRY_USERNAME"), "\(refused)")
        #expect(refused.description.hasPrefix(server.address + "/private/expert"), "one line naming the reference: \(refused)")

        let right = makeRegistry(environment: ["COMPEFT_REGISTRY_USERNAME": "alice", "COMPEFT_REGISTRY_PASSWORD": Self.user.password])
        _ = try right.push(containerAt: path, to: ref)

        // Docker's config.json, as `docker login` writes it.
        let home = scratchDirectory("home")
        try FileManager.default.createDirectory(atPath: home + "/.docker", withIntermediateDirectories: true)
        let auth = Data("alice:\(Self.user.password)".utf8).base64EncodedString()
        try #"{"auths":{"\#(server.address)":{"auth":"\#(auth)"}}}"#.write(toFile: home + "/.docker/config.json", atomically: true, encoding: .utf8)
        let fromConfig = makeRegistry(environment: ["HOME": home])
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try fromConfig.pull(ref, to: out)
        #expect(try contents(out) == contents(path))
        #expect(fromConfig.client(for: server.address).credentialOrigin() == home + "/.docker/config.json")
    }

    /// The bearer-token flow against a registry configured with `auth: token`: the 401 challenge names the
    /// token service, which grants a signed JWT for the scope asked (pull, or pull and push) to the right
    /// credentials only; a lazy one-tensor read goes through the same tokens.
    @Test func bearerTokenFlowWithRightWrongAndMissingCredentials() throws {
        let tokens = try TokenServer(user: Self.user.user, password: Self.user.password)
        defer { tokens.stop() }
        let server = try RegistryServer(tokens: tokens)
        defer { server.stop() }
        let path = Experts.path("lora-bert-seqcls")
        let ref = try Reference(parsing: "\(server.address)/bearer/expert:v1")

        let anonymous = makeRegistry()
        let needs = try #require(throws: ExchangeError.self) { try anonymous.push(containerAt: path, to: ref) }
        #expect(needs.code == .unauthorized)
        #expect(needs.description.contains("the token server \(tokens.realm) wants credentials"), "\(needs)")

        let wrong = makeRegistry(environment: ["COMPEFT_REGISTRY_USERNAME": Self.user.user, "COMPEFT_REGISTRY_PASSWORD": "wrong"])
        let refused = try #require(throws: ExchangeError.self) { try wrong.push(containerAt: path, to: ref) }
        #expect(refused.code == .unauthorized)
        #expect(refused.description.contains("the token server \(tokens.realm) refused the credentials"), "\(refused)")
        #expect(tokens.log.contains { $0.hasPrefix("TOKEN refused") })
        #expect(!tokens.log.contains { $0.hasPrefix("TOKEN granted") }, "no token for a wrong password: \(tokens.log)")

        let environment = ["COMPEFT_REGISTRY_USERNAME": Self.user.user, "COMPEFT_REGISTRY_PASSWORD": Self.user.password]
        let right = makeRegistry(environment: environment)
        _ = try right.push(containerAt: path, to: ref)
        #expect(tokens.log.contains("TOKEN granted repository:bearer/expert:pull,push"), "\(tokens.log)")

        let reader = makeRegistry(environment: environment)
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try reader.pull(ref, to: out)
        #expect(try contents(out) == contents(path))
        let granted = tokens.log.filter { $0.hasPrefix("TOKEN granted") }
        #expect(granted.last == "TOKEN granted repository:bearer/expert:pull", "a pull asks only for pull: \(granted)")

        let (lazy, _) = try makeRegistry(cache: false, environment: environment).open(ref)
        let whole = try ContainerReader(path: path)
        let t = try #require(whole.index.tensors.first { $0.dtype.isFloatingPoint })
        var a = [Float](repeating: 0, count: t.count), b = a
        try a.withUnsafeMutableBufferPointer { try lazy.decodeValues(lazy.tensor(named: t.name)!, base: nil, into: $0) }
        try b.withUnsafeMutableBufferPointer { try whole.decodeValues(t, base: nil, into: $0) }
        #expect(a == b)
    }

    @Test func credentialHelperIsAsked() throws {
        let server = try RegistryServer(htpasswd: Self.user)
        defer { server.stop() }
        let bin = scratchDirectory("bin")
        // A docker-credential-helpers program: reads the server on stdin, prints Username/Secret JSON.
        try """
            #!/bin/sh
            read server
            [ "$1" = get ] && [ "$server" = "\(server.address)" ] || { echo "credentials not found in native keychain"; exit 1; }
            printf '{"ServerURL":"%s","Username":"alice","Secret":"\(Self.user.password)"}' "$server"
            """.write(toFile: bin + "/docker-credential-test", atomically: true, encoding: .utf8)
        chmod(bin + "/docker-credential-test", 0o755)
        let config = scratchDirectory("docker")
        try #"{"credHelpers":{"\#(server.address)":"test"}}"#.write(toFile: config + "/config.json", atomically: true, encoding: .utf8)
        let registry = makeRegistry(environment: ["DOCKER_CONFIG": config, "PATH": bin + ":/usr/bin:/bin"])
        _ = try registry.push(containerAt: Experts.path("ia3-gpt2-f16"), to: try Reference(parsing: "\(server.address)/helper/x:v1"))
        #expect(registry.client(for: server.address).credentialOrigin() == "docker-credential-test")
    }

    /// Keys made by the real openssl command, signatures checked both ways.
    @Test func opensslKeysSignAndVerify() throws {
        let dir = scratchDirectory("keys")
        #expect(Tool.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", dir + "/key.pem"]).status == 0)
        #expect(Tool.run("openssl", ["pkey", "-in", dir + "/key.pem", "-pubout", "-out", dir + "/key.pub"]).status == 0)
        let key = try SigningKey(pemFile: dir + "/key.pem")
        let pub = try VerifyingKey(pemFile: dir + "/key.pub")
        // The PEM compeft writes is the PEM openssl wrote, byte for byte.
        #expect(key.pem == (try String(contentsOfFile: dir + "/key.pem", encoding: .utf8)))
        #expect(pub.pem == (try String(contentsOfFile: dir + "/key.pub", encoding: .utf8)))
        #expect(key.publicKey.fingerprint == pub.fingerprint)
        // compeft's signature verifies with openssl.
        let message = Data("the manifest digest".utf8)
        try message.write(to: URL(fileURLWithPath: dir + "/msg"))
        try key.sign(message).write(to: URL(fileURLWithPath: dir + "/sig"))
        let verify = Tool.run("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", dir + "/key.pub", "-rawin", "-in", dir + "/msg", "-sigfile", dir + "/sig"])
        #expect(verify.status == 0, "\(verify.output)")
        // openssl's signature verifies with compeft.
        #expect(Tool.run("openssl", ["pkeyutl", "-sign", "-inkey", dir + "/key.pem", "-rawin", "-in", dir + "/msg", "-out", dir + "/sig2"]).status == 0)
        #expect(pub.isValidSignature(try contents(dir + "/sig2"), for: message))
        #expect(!pub.isValidSignature(try contents(dir + "/sig2"), for: Data("another".utf8)))
        // Other key types are refused with a clear message.
        #expect(Tool.run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", dir + "/ec.pem"]).status == 0)
        let e = try #require(throws: ExchangeError.self) { try SigningKey(pemFile: dir + "/ec.pem") }
        #expect(e.description.contains("not an Ed25519 private key"), "\(e)")
        #expect(throws: ExchangeError.self) { try VerifyingKey(pemFile: dir + "/key.pem") }
    }

    @Test func signedPushVerifiesAndOtherKeysAndUnsignedExpertsAreRefused() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let dir = scratchDirectory("keys")
        for k in ["a", "b"] {
            #expect(Tool.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", "\(dir)/\(k).pem"]).status == 0)
            #expect(Tool.run("openssl", ["pkey", "-in", "\(dir)/\(k).pem", "-pubout", "-out", "\(dir)/\(k).pub"]).status == 0)
        }
        let signer = try SigningKey(pemFile: dir + "/a.pem")
        let good = try VerifyingKey(pemFile: dir + "/a.pub")
        let other = try VerifyingKey(pemFile: dir + "/b.pub")
        let registry = makeRegistry()
        let path = Experts.path("lora-bert-seqcls")
        let ref = try Reference(parsing: "\(server.address)/signed/expert:v1")
        let pushed = try registry.push(containerAt: path, to: ref, signingKey: signer)
        #expect(pushed.signature != nil)
        #expect(try registry.tags(ref).contains(pushed.manifestDigest.signatureTag))

        let out = scratchDirectory("pull") + "/x.cpeft"
        let pulled = try makeRegistry().pull(ref, to: out, verifyingKey: good)
        #expect(pulled.resolved.verifiedSigner == good.fingerprint)
        let (reader, _) = try makeRegistry(cache: false).open(ref, verifyingKey: good)
        #expect(reader.index.tensors.count == 10)

        let refused = try #require(throws: ExchangeError.self) { try makeRegistry().pull(ref, to: out + "2", verifyingKey: other) }
        #expect(refused.code == .signature)
        #expect(refused.description.contains(other.fingerprint), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: out + "2"))
        #expect(throws: ExchangeError.self) { try makeRegistry().open(ref, verifyingKey: other) }

        let unsignedRef = try Reference(parsing: "\(server.address)/signed/expert:unsigned")
        _ = try registry.push(containerAt: Experts.path("ia3-gpt2-f16"), to: unsignedRef)
        let unsigned = try #require(throws: ExchangeError.self) { try makeRegistry().pull(unsignedRef, to: out + "3", verifyingKey: good) }
        #expect(unsigned.code == .signature)
        #expect(unsigned.description.contains("is not signed"), "\(unsigned)")

        // A signature moved onto another manifest (a replay) names the digest it was made for.
        let client = registry.client(for: server.address)
        let unsignedDigest = try client.manifest(unsignedRef).digest
        let stolen = try client.manifest(ref.with(tag: pushed.manifestDigest.signatureTag))
        try client.putManifest(stolen.bytes, mediaType: MediaType.imageManifest, to: unsignedRef.with(tag: unsignedDigest.signatureTag))
        let replay = try #require(throws: ExchangeError.self) { try makeRegistry().pull(unsignedRef, to: out + "4", verifyingKey: good) }
        #expect(replay.code == .signature)
        #expect(replay.description.contains("is for \(pushed.manifestDigest)"), "\(replay)")

        // A second signer adds its layer; both keys verify.
        _ = try registry.sign(Descriptor(mediaType: MediaType.imageManifest, digest: pushed.manifestDigest, size: 0), in: ref,
                              key: try SigningKey(pemFile: dir + "/b.pem"))
        _ = try makeRegistry().resolve(ref, verifyingKey: other)
        _ = try makeRegistry().resolve(ref, verifyingKey: good)
    }

    /// skopeo (containers/image, an independent implementation of the distribution spec) reads the artifact.
    @Test(.requiresTool("skopeo", install: "Debian package skopeo; scripts/bootstrap.sh installs it"))
    func skopeoReadsTheArtifact() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = Experts.path("full-ft")
        let ref = try Reference(parsing: "\(server.address)/interop/expert:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let raw = Tool.run("skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(ref)"])
        #expect(raw.status == 0, "\(raw.output)")
        #expect(Digest.of(raw.stdout) == pushed.manifestDigest, "skopeo sees the manifest compeft pushed")
        let manifest = try JSONSerialization.jsonObject(with: raw.stdout) as? [String: Any]
        #expect(manifest?["artifactType"] as? String == MediaType.adapterArtifact)
        let config = Tool.run("skopeo", ["inspect", "--config", "--raw", "--tls-verify=false", "docker://\(ref)"])
        #expect(config.status == 0, "\(config.output)")
        #expect(Digest.of(config.stdout) == pushed.config.digest)
        let parsed = try ExpertConfig.decode(config.stdout, subject: "skopeo")
        #expect(parsed.inputKind == "full-fine-tune")
        // The whole artifact copied to an OCI layout folder: the layer file is the container, byte for byte.
        let layout = scratchDirectory("layout")
        let copy = Tool.run("skopeo", ["copy", "--src-tls-verify=false", "docker://\(ref)", "oci:\(layout):v1"])
        #expect(copy.status == 0, "\(copy.output)")
        let blob = layout + "/blobs/sha256/" + pushed.layer.digest.hex
        #expect(try contents(blob) == contents(path))
    }
}
