import StratusModel
import StratusStore

extension StoredResource {
    /// Whether `name` is this resource's name or its EC2-style id: what a NAME on the command
    /// line matches when no project narrows it (`-A`), here and on the server alike.
    public func isCalled(_ name: String) -> Bool {
        metadata.name == name || (metadata.id != nil && metadata.id == name)
    }
}
