import Crypto
import Foundation

/// The names EC2 gives key pairs and security groups, which are not DNS labels: up to 255 ASCII
/// characters, spaces and upper case included ("Test key", "Web Servers").
///
/// A resource keeps a DNS-label name; its EC2 name is the annotation `ec2.stratus/name` when
/// set, else its name. The EC2 API names what it makes by `resourceName(for:)`: the EC2 name
/// itself when it is a valid resource name, else a label made from it with a hash of the whole
/// name appended, so two EC2 names never map to the same resource. Manifests may set the
/// annotation on any key pair or security group; admission keeps EC2 names unique per project.
public enum EC2Name {
    public static let annotation = "ec2.stratus/name"
    /// The kinds EC2 names by name rather than by id.
    public static let kinds: Set<Kind> = [.keyPair, .securityGroup]

    /// The EC2 name of a resource: its annotation, else its name.
    public static func of(_ metadata: ObjectMeta) -> String { metadata.annotations[annotation] ?? metadata.name }

    /// The resource name the EC2 API gives a resource it makes under `ec2Name`.
    public static func resourceName(for ec2Name: String) -> String {
        if NameRules.problem(with: ec2Name, dotted: false) == nil { return ec2Name }
        var label = ""
        for scalar in ec2Name.lowercased().unicodeScalars {
            let keep = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9")
            if keep {
                label.unicodeScalars.append(scalar)
            } else if !label.isEmpty && !label.hasSuffix("-") {
                label += "-"
            }
            if label.count >= 45 { break }
        }
        while label.hasSuffix("-") { label.removeLast() }
        let hash = SHA256.hash(data: Data(ec2Name.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        return label.isEmpty ? "n-\(hash)" : "\(label)-\(hash)"
    }

    /// What is wrong with an EC2 name (AWS: 1 to 255 ASCII characters), or nil.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "an EC2 name must not be empty" }
        if name.utf8.count > 255 { return "an EC2 name has at most 255 characters, got \(name.utf8.count)" }
        if let bad = name.unicodeScalars.first(where: { !$0.isASCII || $0.value < 0x20 || $0.value == 0x7f }) {
            return "an EC2 name holds ASCII letters, digits, spaces and punctuation, not U+\(String(format: "%04X", bad.value))"
        }
        return nil
    }
}
