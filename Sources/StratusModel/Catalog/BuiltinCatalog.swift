import Foundation

/// The built-in catalog (`manifests/catalog.yaml`), compiled in so the binary needs no files beside it.
///
/// A test checks that this text and `manifests/catalog.yaml` are identical.
public enum BuiltinCatalog {
    /// The apply set the catalog is recorded under.
    public static let applySet = "catalog"

    /// The catalog's manifest text.
    public static let yaml = #"""
# The built-in catalog, applied once when a data directory is first created (apply set "catalog").
# The instance types are the seed's (Nova's original flavors). Nodes default to zone "nova".
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: m1.tiny
spec:
  memoryMB: 512
  vcpus: 1
  diskGB: 0
---
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: m1.small
spec:
  memoryMB: 1024
  vcpus: 1
  diskGB: 10
---
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: m1.medium
spec:
  memoryMB: 2048
  vcpus: 2
  diskGB: 10
---
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: m1.large
spec:
  memoryMB: 4096
  vcpus: 4
  diskGB: 10
---
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: m1.xlarge
spec:
  memoryMB: 8192
  vcpus: 4
  diskGB: 10
---
apiVersion: stratus/v1
kind: InstanceType
metadata:
  name: c1.medium
spec:
  memoryMB: 2048
  vcpus: 4
  diskGB: 10

"""#

    /// The catalog as a manifest source.
    public static var source: ManifestSource { ManifestSource(name: "<builtin>/manifests/catalog.yaml", data: Data(yaml.utf8)) }
}
