import Foundation
import StratusModel

/// One setting of `stratus serve`: its flag, environment variable, config-file key and help, in one place.
///
/// The flag is `--<key>`, the config-file key is `<key>`, the variable `STRATUS_<KEY>` (dashes
/// become underscores) unless named otherwise. The default is the value `ServerConfiguration()`
/// holds, read through the same accessor, so help and `--print-config` cannot disagree with it.
public struct ServerSetting: Sendable {
    /// `api-port`: the flag without dashes and the config-file key.
    public let key: String
    /// `STRATUS_API_PORT`.
    public let environment: String
    /// One sentence a user can act on.
    public let help: String
    /// What the value is, for help: `port`, `url`, `file`.
    public let valueName: String
    /// A repeatable flag and a YAML list in the config file.
    public let isList: Bool
    /// Shown as `<redacted>` by `--print-config`.
    public let isSecret: Bool
    let assign: @Sendable (inout ServerConfiguration, String) throws(ConfigurationError) -> Void
    let render: @Sendable (ServerConfiguration) -> [String]
    /// Empties a list setting before a source sets it (a later source replaces the whole list).
    let clear: (@Sendable (inout ServerConfiguration) -> Void)?

    init(
        _ key: String, environment: String? = nil, valueName: String, isList: Bool = false, isSecret: Bool = false, help: String,
        assign: @escaping @Sendable (inout ServerConfiguration, String) throws(ConfigurationError) -> Void,
        render: @escaping @Sendable (ServerConfiguration) -> [String],
        clear: (@Sendable (inout ServerConfiguration) -> Void)? = nil
    ) {
        self.key = key
        self.environment = environment ?? "STRATUS_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
        self.help = help
        self.valueName = valueName
        self.isList = isList
        self.isSecret = isSecret
        self.assign = assign
        self.render = render
        self.clear = clear
    }

    /// The flag as typed: `--api-port`.
    public var flag: String { "--\(key)" }

    /// The value in a configuration, as text (empty when unset).
    public func values(in configuration: ServerConfiguration) -> [String] { render(configuration) }
}

extension ServerSetting {
    /// A text setting.
    static func text(
        _ key: String, _ path: any WritableKeyPath<ServerConfiguration, String> & Sendable, environment: String? = nil, valueName: String, help: String,
        check: (@Sendable (String) throws(ConfigurationError) -> Void)? = nil
    ) -> ServerSetting {
        ServerSetting(key, environment: environment, valueName: valueName, help: help, assign: { configuration, text throws(ConfigurationError) in
            try check?(text)
            configuration[keyPath: path] = text
        }, render: { [$0[keyPath: path]] })
    }

    /// A text setting that may be unset.
    static func optional(
        _ key: String, _ path: any WritableKeyPath<ServerConfiguration, String?> & Sendable, valueName: String, isSecret: Bool = false, help: String,
        check: (@Sendable (String) throws(ConfigurationError) -> Void)? = nil
    ) -> ServerSetting {
        ServerSetting(key, valueName: valueName, isSecret: isSecret, help: help, assign: { configuration, text throws(ConfigurationError) in
            try check?(text)
            configuration[keyPath: path] = text
        }, render: { $0[keyPath: path].map { [$0] } ?? [] })
    }

    /// A whole number within `range`.
    static func integer(
        _ key: String, _ path: any WritableKeyPath<ServerConfiguration, Int> & Sendable, range: ClosedRange<Int>, valueName: String, help: String
    ) -> ServerSetting {
        ServerSetting(key, valueName: valueName, help: help, assign: { configuration, text throws(ConfigurationError) in
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                throw ConfigurationError("\(key): expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            configuration[keyPath: path] = value
        }, render: { ["\($0[keyPath: path])"] })
    }

    /// One of a fixed set of words.
    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ key: String, _ path: any WritableKeyPath<ServerConfiguration, Value> & Sendable, help: String
    ) -> ServerSetting where Value.RawValue == String {
        let words = Value.allCases.map(\.rawValue)
        return ServerSetting(key, valueName: words.joined(separator: "|"), help: help, assign: { configuration, text throws(ConfigurationError) in
            guard let value = Value(rawValue: text) else {
                let hint = Suggestion.closest(to: text, in: words).map { " (did you mean \"\($0)\"?)" } ?? ""
                throw ConfigurationError("\(key): \"\(text)\" is not one of \(words.joined(separator: ", "))\(hint)")
            }
            configuration[keyPath: path] = value
        }, render: { [$0[keyPath: path].rawValue] })
    }

    /// A repeatable setting: each flag (or list item) adds one value.
    static func list(_ key: String, _ path: any WritableKeyPath<ServerConfiguration, [String]> & Sendable, valueName: String, help: String) -> ServerSetting {
        ServerSetting(key, valueName: valueName, isList: true, help: help, assign: { $0[keyPath: path].append($1) }, render: { $0[keyPath: path] },
            clear: { $0[keyPath: path] = [] })
    }
}
