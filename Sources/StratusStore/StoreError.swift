import StratusModel

/// A store operation that cannot be done, with what to do about it.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    enum Code: Sendable, Equatable {
        case notFound
        case protected
        case massDelete
        case corrupt
        case conflict
        case secretKey
        case defaultGroup
    }

    let code: Code
    public let message: String

    public static func notFound(_ key: ResourceKey) -> StoreError {
        StoreError(code: .notFound, message: "\(key) not found")
    }

    public static func notFound(message: String) -> StoreError {
        StoreError(code: .notFound, message: message)
    }

    public static func protected(_ keys: [ResourceKey]) -> StoreError {
        let names = keys.map(\.description).joined(separator: ", ")
        return StoreError(code: .protected, message: "refusing to delete \(names): annotation stratus/protect is \"true\"; remove the annotation first")
    }

    public static func massDelete(count: Int, setSize: Int, set: String) -> StoreError {
        StoreError(code: .massDelete, message: "refusing to prune \(count) of \(setSize) resources of apply set \"\(set)\" (more than 10 or more than half); check the files, then pass --allow-mass-delete if this is intended")
    }

    static func corrupt(_ message: String) -> StoreError { StoreError(code: .corrupt, message: message) }

    public static func conflict(_ message: String) -> StoreError { StoreError(code: .conflict, message: message) }

    static func secretKey(_ message: String) -> StoreError { StoreError(code: .secretKey, message: message) }

    public var isNotFound: Bool { code == .notFound }
    public var isProtected: Bool { code == .protected }
    public var isMassDelete: Bool { code == .massDelete }

    public var description: String { message }
}
