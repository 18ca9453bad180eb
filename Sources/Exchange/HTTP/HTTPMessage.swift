public import Foundation

/// One HTTP request: what ``HTTPTransport`` sends.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    /// Header fields; names are sent as written.
    public var headers: [String: String]
    /// The body, sent with its `Content-Length` (nil: none).
    public var body: Data?

    public init(_ method: String, _ url: URL, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// The status, header fields and (for buffered requests) body of a response.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields with lowercased names.
    public var headers: [String: String]
    public var body: Data
    /// The URL that answered.
    public var url: URL

    /// The value of header `name` (any case).
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    public var isSuccess: Bool { (200..<300).contains(status) }
    public var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) }

    /// The `Location` header resolved against the URL that answered.
    public var location: URL? {
        guard let l = header("location") else { return nil }
        return URL(string: l, relativeTo: url)?.absoluteURL
    }
}
