public import Foundation
#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// Sends HTTP requests one at a time per caller, synchronously, over `URLSession` (libcurl on Linux).
///
/// Redirects are not followed here: the response is returned as it is, so that ``RegistryClient`` can
/// decide what travels to the new host (credentials never do). TLS is verified against the system
/// trust store. Every byte of every request and response body is counted, for tests and reports.
///
/// Safe to use from many threads at once; ``cancelAll()`` stops what is in flight and every later
/// request, for Ctrl-C.
public final class HTTPTransport: NSObject, @unchecked Sendable {
    /// The longest a request may wait for the next bytes before it fails as timed out.
    public let timeout: TimeInterval
    private var session: URLSession!
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var tasks: [Int: TaskState] = [:]
    private var cancelled = false
    private var sent = 0
    private var received = 0
    private var requests = 0

    /// - Parameter timeout: seconds without progress after which a request fails.
    public init(timeout: TimeInterval = 60, userAgent: String) {
        self.timeout = timeout
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        configuration.httpAdditionalHeaders = ["User-Agent": userAgent]
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        session = URLSession(configuration: configuration, delegate: Delegate(owner: self), delegateQueue: queue)
    }

    deinit { session.invalidateAndCancel() }

    /// Counts since the transport was made: requests sent, request body bytes, response body bytes.
    public struct Counters: Sendable, Equatable {
        public var requests: Int
        public var bytesSent: Int
        public var bytesReceived: Int
    }

    public var counters: Counters { lock.withLock { Counters(requests: requests, bytesSent: sent, bytesReceived: received) } }

    /// Stops every request in flight (they fail with `.interrupted`) and refuses new ones.
    public func cancelAll() {
        let inFlight: [TaskState] = lock.withLock {
            cancelled = true
            return Array(tasks.values)
        }
        for t in inFlight { t.task?.cancel() }
    }

    public var isCancelled: Bool { lock.withLock { cancelled } }

    /// Sends `request` and returns the response with its whole body (at most `maxBody` bytes; a longer
    /// body is a `.protocolViolation`).
    public func send(_ request: HTTPRequest, maxBody: Int = 16 << 20, subject: String) throws -> HTTPResponse {
        let state = TaskState(subject: subject, maxBody: maxBody, sink: nil)
        return try run(request, state)
    }

    /// Sends `request` and hands the body to `sink` as it arrives, when `accept` says yes to the status
    /// and headers (otherwise the body is buffered as in ``send(_:maxBody:subject:)``, for the error
    /// message). A throwing sink stops the transfer and its error is rethrown.
    public func stream(_ request: HTTPRequest, subject: String, accept: @escaping @Sendable (HTTPResponse) -> Bool,
                       sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> HTTPResponse {
        let state = TaskState(subject: subject, maxBody: 1 << 20, sink: sink)
        state.accept = accept
        return try run(request, state)
    }

    private func run(_ request: HTTPRequest, _ state: TaskState) throws -> HTTPResponse {
        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = timeout
        for (k, v) in request.headers { urlRequest.setValue(v, forHTTPHeaderField: k) }
        let task: URLSessionTask
        if let body = request.body {
            urlRequest.setValue(String(body.count), forHTTPHeaderField: "Content-Length")
            task = session.uploadTask(with: urlRequest, from: body)
        } else {
            if ["PUT", "POST", "PATCH"].contains(request.method) { urlRequest.setValue("0", forHTTPHeaderField: "Content-Length") }
            task = session.dataTask(with: urlRequest)
        }
        state.task = task
        let refused: Bool = lock.withLock {
            if cancelled { return true }
            tasks[task.taskIdentifier] = state
            requests += 1
            return false
        }
        if refused { throw ExchangeError(.interrupted, state.subject, "interrupted") }
        task.resume()
        state.done.wait()
        lock.withLock {
            tasks[task.taskIdentifier] = nil
            sent += Int(task.countOfBytesSent)
            received += state.receivedCount
        }
        if let error = state.sinkError { throw error }
        if state.error != nil, state.challenged, !isCancelled, let http = task.response as? HTTPURLResponse {
            // A 401 that Foundation turned into an authentication challenge, which compeft answers itself
            // (the body is lost; the status and WWW-Authenticate are what matter).
            return Self.response(http)
        }
        if let error = state.error {
            if isCancelled { throw ExchangeError(.interrupted, state.subject, "interrupted") }
            throw Self.describe(error, request: request, subject: state.subject)
        }
        guard let response = state.response else {
            throw ExchangeError(.network, state.subject, "\(request.method) \(request.url.absoluteString): no response")
        }
        var result = response
        result.body = state.body
        return result
    }

    /// One line for a failed transfer; `.network` so that the caller may retry.
    static func describe(_ error: any Error, request: HTTPRequest, subject: String) -> ExchangeError {
        let ns = error as NSError
        let what: String
        // libcurl's TLS failures reach Foundation on Linux mostly as code -1 with OpenSSL's text.
        let text = ns.localizedDescription
        let tlsText = text.contains("SSL") || text.contains("TLS") || text.contains("certificate")
        if ns.code == -1 && tlsText {
            var e = ExchangeError(.network, subject, "\(request.url.host ?? "?"): TLS failed (\(text)); the certificate must be trusted by the system store")
            e.tlsFailure = true
            return e
        }
        switch ns.code {
        case NSURLErrorTimedOut: what = "timed out"
        case NSURLErrorCannotConnectToHost: what = "connection refused"
        case NSURLErrorNetworkConnectionLost: what = "the connection was dropped"
        case NSURLErrorCannotFindHost, NSURLErrorDNSLookupFailed: what = "host not found"
        case NSURLErrorSecureConnectionFailed, NSURLErrorServerCertificateUntrusted, NSURLErrorServerCertificateHasBadDate,
             NSURLErrorServerCertificateHasUnknownRoot, NSURLErrorServerCertificateNotYetValid, NSURLErrorClientCertificateRejected:
            var e = ExchangeError(.network, subject, "\(request.url.host ?? "?"): TLS failed (\(ns.localizedDescription)); the certificate must be trusted by the system store")
            e.tlsFailure = true
            return e
        default: what = "\(ns.localizedDescription) [\(ns.domain) \(ns.code)]"
        }
        return ExchangeError(.network, subject, "\(request.method) \(request.url.absoluteString): \(what)")
    }

    /// What one task has received so far; written on the delegate queue, read after `done`.
    final class TaskState: @unchecked Sendable {
        let subject: String
        let maxBody: Int
        let sink: ((UnsafeRawBufferPointer) throws -> Void)?
        var accept: (@Sendable (HTTPResponse) -> Bool)?
        var streaming = false
        weak var task: URLSessionTask?
        var response: HTTPResponse?
        var body = Data()
        var receivedCount = 0
        var error: (any Error)?
        var sinkError: (any Error)?
        var challenged = false
        let done = DispatchSemaphore(value: 0)

        init(subject: String, maxBody: Int, sink: ((UnsafeRawBufferPointer) throws -> Void)?) {
            self.subject = subject
            self.maxBody = maxBody
            self.sink = sink
        }
    }

    fileprivate func state(_ task: URLSessionTask) -> TaskState? { lock.withLock { tasks[task.taskIdentifier] } }

    /// Status and header fields (names lowercased) of a Foundation response.
    static func response(_ http: HTTPURLResponse) -> HTTPResponse {
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
        }
        return HTTPResponse(status: http.statusCode, headers: headers, body: Data(), url: http.url ?? URL(string: "http://invalid")!)
    }

    /// The session's delegate; holds its owner weakly (the session retains its delegate).
    private final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        weak var owner: HTTPTransport?
        init(owner: HTTPTransport) { self.owner = owner }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)  // the caller follows redirects itself
        }

        /// Foundation on Linux turns a `401` with `WWW-Authenticate: Basic` into a challenge (and hangs on a
        /// HEAD when left to its default handling). Cancelling ends the task with the 401 response kept in
        /// `task.response`, and ``RegistryClient`` answers the challenge itself.
        func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                        completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
            owner?.state(task)?.challenged = true
            completionHandler(.cancelAuthenticationChallenge, nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            guard let state = owner?.state(dataTask), let http = response as? HTTPURLResponse else {
                completionHandler(.allow)
                return
            }
            let r = HTTPTransport.response(http)
            state.response = r
            if state.sink != nil, state.accept?(r) ?? false { state.streaming = true }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard let state = owner?.state(dataTask) else { return }
            state.receivedCount += data.count
            if state.sinkError != nil { return }
            if state.streaming, let sink = state.sink {
                do {
                    try data.withUnsafeBytes { try sink($0) }
                } catch {
                    state.sinkError = error
                    dataTask.cancel()
                }
                return
            }
            guard state.body.count + data.count <= state.maxBody else {
                state.sinkError = ExchangeError(.protocolViolation, state.subject,
                                                "\(dataTask.originalRequest?.url?.absoluteString ?? "?"): response body is larger than \(state.maxBody) bytes")
                dataTask.cancel()
                return
            }
            state.body.append(data)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            guard let state = owner?.state(task) else { return }
            state.error = error
            state.done.signal()
        }
    }
}
