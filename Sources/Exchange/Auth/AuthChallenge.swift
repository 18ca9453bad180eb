/// A `WWW-Authenticate` challenge (RFC 7235): a scheme and its parameters.
///
/// Registries send `Basic realm="…"` or `Bearer realm="https://auth.example/token",service="…",scope="…"`
/// (the distribution spec's token flow).
public struct AuthChallenge: Equatable, Sendable {
    /// The scheme, lowercased: `basic` or `bearer`.
    public var scheme: String
    /// Parameter names lowercased, values unquoted.
    public var parameters: [String: String]

    /// Parses the first challenge of a header value; nil when there is none.
    public init?(header: String) {
        var s = Substring(header).drop { $0 == " " }
        guard let end = s.firstIndex(where: { $0 == " " || $0 == "," }) ?? Optional(s.endIndex), end > s.startIndex else { return nil }
        scheme = s[..<end].lowercased()
        s = s[end...]
        var parameters: [String: String] = [:]
        while true {
            s = s.drop { $0 == " " || $0 == "," }
            guard let eq = s.firstIndex(of: "=") else { break }
            let name = s[..<eq].trimmingSpaces.lowercased()
            // A token followed by a space, not '=', starts the next challenge.
            if name.contains(" ") { break }
            s = s[s.index(after: eq)...]
            var value = ""
            if s.first == "\"" {
                s = s.dropFirst()
                var escaped = false
                var end = s.endIndex
                for i in s.indices {
                    let c = s[i]
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" {
                        end = i
                        break
                    } else { value.append(c) }
                }
                s = end < s.endIndex ? s[s.index(after: end)...] : s[end...]
            } else {
                let end = s.firstIndex(of: ",") ?? s.endIndex
                value = String(s[..<end]).trimmingSpaces
                s = s[end...]
            }
            parameters[name] = value
        }
        self.parameters = parameters
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
