import Foundation
import StratusNode
import Testing

@testable import StratusServer

/// `stratus serve` settings: one table, four sources, one order of precedence.
@Suite struct ServerConfigurationTests {
    static func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "stratus-config-\(UUID().uuidString.prefix(8)).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("with nothing set, every setting has its documented default")
    func defaults() throws {
        let configuration = try ServerConfiguration.resolve(arguments: [], environment: [:])
        #expect(configuration == ServerConfiguration())
        #expect(configuration.listen == "127.0.0.1")
        #expect(configuration.apiPort == 8774 && configuration.ec2Port == 8773)
        #expect(configuration.hypervisor == "test:///default")
    }

    @Test("a flag beats the environment, which beats the config file, which beats the default")
    func precedence() throws {
        let path = try Self.file("api-port: 1001\nec2-port: 1002\nzone: file-zone\nresync-interval: 7\n")
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--config", path, "--api-port", "3001"],
            environment: ["STRATUS_API_PORT": "2001", "STRATUS_EC2_PORT": "2002", "STRATUS_ZONE": ""]
        )
        #expect(configuration.apiPort == 3001)  // flag
        #expect(configuration.ec2Port == 2002)  // environment over file
        #expect(configuration.zone == "file-zone")  // an empty variable is unset
        #expect(configuration.resyncInterval == 7)  // file over default
        #expect(configuration.sources["api-port"] == .flag && configuration.sources["ec2-port"] == .environment)
        #expect(configuration.sources["zone"] == .file && configuration.sources["listen"] == nil)
    }

    @Test("STRATUS_CONFIG names the file when --config does not")
    func configFromEnvironment() throws {
        let path = try Self.file("listen: 0.0.0.0\n")
        #expect(try ServerConfiguration.resolve(arguments: [], environment: ["STRATUS_CONFIG": path]).listen == "0.0.0.0")
    }

    @Test("every setting of the table is accepted as flag, variable and file key")
    func everySettingEverywhere() throws {
        for setting in ServerConfiguration.settings {
            let value = sample(setting.key)
            let fromFlag = try ServerConfiguration.resolve(arguments: ["--\(setting.key)=\(value)"] + companions(setting.key), environment: [:])
            let fromEnvironment = try ServerConfiguration.resolve(arguments: companions(setting.key), environment: [setting.environment: value])
            let fromFile = try ServerConfiguration.resolve(arguments: ["--config", try Self.file("\(setting.key): \"\(value)\"\n")] + companions(setting.key), environment: [:])
            #expect(setting.values(in: fromFlag) == [value], "\(setting.key)")
            #expect(setting.values(in: fromEnvironment) == [value], "\(setting.key)")
            #expect(setting.values(in: fromFile) == [value], "\(setting.key)")
        }
    }

    /// A valid value for each setting (none equal to its default).
    func sample(_ key: String) -> String {
        switch key {
        case "api-port", "ec2-port", "s3-port": "4321"
        case "host-network": "on"
        case "segmentation": "vxlan"
        case "s3-domain": "s3.example.test"
        case "api-max-body": "64"
        case "http-idle-timeout": "5"
        case "max-connections": "500"
        case "max-connections-per-client": "50"
        case "region": "eu-test-1"
        case "resync-interval": "9"
        case "role": "all"
        case "log-level": "debug"
        case "log-format": "json"
        case "metrics-listen": "127.0.0.1:9464"
        case "domain-type": "qemu"
        case "node-capacity": "cpus=16,memory=64Gi"
        case "metadata-listen": "127.0.0.1:8775"
        case "object-url": "http://controller.example.test:3333"
        case "public-range": "198.51.100.0/24"
        case "private-range": "172.16.0.0/12"
        case "ldap-url": "ldap://127.0.0.1:389"
        case "amqp": "amqp://stratus@127.0.0.1:5672/"
        case "node-timeout": "7"
        default: "value-\(key)"
        }
    }

    /// What a setting needs beside it to be valid (LDAP settings come together).
    func companions(_ key: String) -> [String] {
        if key == "aoe-interface" { return ["--aoe-check-interface", "aoe-check"] }
        if key == "aoe-check-interface" { return ["--aoe-interface", "aoe-export"] }
        if key == "volume-group" { return ["--aoe-interface", "aoe-export", "--aoe-check-interface", "aoe-check"] }
        if key == "amqp" { return ["--role", "controller"] }
        if key == "amqp-password-file" || key == "node-timeout" { return ["--role", "controller", "--amqp", "amqp://stratus@127.0.0.1:5672/"] }
        guard key.hasPrefix("ldap-") else { return [] }
        let needed = [("ldap-url", "ldap://127.0.0.1:389"), ("ldap-bind-dn", "cn=a"), ("ldap-base", "dc=b")]
        return needed.filter { $0.0 != key }.flatMap { ["--\($0.0)", $0.1] }
    }

    @Test("role controller needs a broker and takes no node settings; the broker settings need role controller; agents are their own command")
    func roles() throws {
        let controller = try ServerConfiguration.resolve(arguments: ["--role", "controller", "--amqp", "amqp://stratus@mq1:5672/", "--node-timeout", "5"], environment: [:])
        #expect(controller.role == .controller && controller.amqp == "amqp://stratus@mq1:5672/" && controller.nodeTimeout == 5)
        func refusal(_ arguments: [String]) -> String {
            do {
                _ = try ServerConfiguration.resolve(arguments: arguments, environment: [:])
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal(["--role", "controller"]).contains("needs amqp"))
        #expect(refusal(["--role", "controller", "--amqp", "amqp://mq1/", "--hypervisor", "qemu:///system"]).contains("stratus agent"))
        #expect(refusal(["--role", "controller", "--amqp", "amqp://mq1/", "--host-network", "on"]).hasPrefix("host-network"))
        #expect(refusal(["--amqp", "amqp://mq1/"]).contains("--role controller"))
        #expect(refusal(["--role", "agent"]).contains("stratus agent --amqp"))
        #expect(refusal(["--role", "controller", "--amqp", "http://mq1/"]).hasPrefix("amqp:"))
    }

    @Test("aoe-interface and aoe-check-interface come together, and name two ports")
    func aoeInterfaces() throws {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--aoe-interface", "eth1"], environment: [:]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--aoe-check-interface", "eth2"], environment: [:]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--aoe-interface", "eth1", "--aoe-check-interface", "eth1"], environment: [:]) }
        let both = try ServerConfiguration.resolve(arguments: ["--aoe-interface", "eth1", "--aoe-check-interface", "eth2"], environment: [:])
        #expect(both.aoeInterface == "eth1" && both.aoeCheckInterface == "eth2" && both.volumeDir == nil && both.volumeGroup == nil)
    }

    @Test("volume-group needs the AoE interfaces and a valid LVM name")
    func volumeGroup() throws {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--volume-group", "stratus"], environment: [:]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--volume-group", "-bad", "--aoe-interface", "eth1", "--aoe-check-interface", "eth2"], environment: [:]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(arguments: ["--volume-group", "a/b", "--aoe-interface", "eth1", "--aoe-check-interface", "eth2"], environment: [:]) }
        let set = try ServerConfiguration.resolve(arguments: ["--volume-group", "stratus-vg", "--aoe-interface", "eth1", "--aoe-check-interface", "eth2"], environment: [:])
        #expect(set.volumeGroup == "stratus-vg")
    }

    @Test("an unknown key in the config file is refused with its position and a did-you-mean")
    func unknownFileKey() throws {
        let path = try Self.file("api-port: 1\nldap-ulr: ldap://x\n")
        #expect {
            try ServerConfiguration.resolve(arguments: ["--config", path], environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("\(path):2:1") && text.contains("unknown setting \"ldap-ulr\"") && text.contains("did you mean \"ldap-url\"")
        }
    }

    @Test("an unknown flag, a missing value, a bad number and a repeated flag each say what is wrong")
    func badFlags() {
        let cases: [([String], String)] = [
            (["--api-prot", "1"], "did you mean --api-port?"),
            (["--api-port"], "--api-port needs a value"),
            (["--api-port", "http"], "api-port: expected a whole number from 0 to 65535"),
            (["--api-port", "70000"], "from 0 to 65535"),
            (["--zone", "a", "--zone", "b"], "--zone was given 2 times"),
            (["--log-level", "debg"], "did you mean \"debug\"?"),
            (["--metadata-listen", "169.254.169.254"], "expected HOST:PORT"),
            (["--ldap-url", "ldap://x"], "ldap-url needs ldap-bind-dn and ldap-base"),
            (["--ldap-base", "dc=x"], "ldap-base is set but ldap-url is not"),
            (["stray"], "unexpected argument \"stray\""),
            (["--region", "EU West"], "region: expected lower-case letters, digits and '-'"),
            (["--node-capacity", "cpus=16,memory=64GB"], "node-capacity: memory must be a whole number with a unit, like 512Mi, 64Gi or 1Ti, got \"64GB\""),
            (["--node-capacity", "16 cores"], "node-capacity: \"16 cores\" is not name=value; expected cpus=N,memory=SIZE like cpus=16,memory=64Gi"),
            (["--domain-type", "test"], "domain-type: expected kvm or qemu"),
        ]
        for (arguments, expected) in cases {
            #expect(throws: ConfigurationError.self, "\(arguments)") { try ServerConfiguration.resolve(arguments: arguments, environment: [:]) }
            do {
                _ = try ServerConfiguration.resolve(arguments: arguments, environment: [:])
            } catch {
                #expect(error.description.contains(expected), "\(arguments): \(error)")
            }
        }
    }

    @Test("--node-capacity is parsed once into numbers, from a flag, the environment or the config file")
    func nodeCapacity() throws {
        #expect(try ServerConfiguration.resolve(arguments: ["--node-capacity", "cpus=16,memory=64Gi"], environment: [:]).nodeCapacity == DeclaredCapacity(vcpus: 16, memoryMB: 65_536))
        #expect(try ServerConfiguration.resolve(arguments: [], environment: ["STRATUS_NODE_CAPACITY": "memory=512Mi"]).nodeCapacity == DeclaredCapacity(memoryMB: 512))
        #expect(try ServerConfiguration.resolve(arguments: ["--config", try Self.file("node-capacity: cpus=2\n")], environment: [:]).nodeCapacity == DeclaredCapacity(vcpus: 2))
        #expect(try ServerConfiguration.resolve(arguments: [], environment: [:]).nodeCapacity == nil, "unset: the hypervisor's figures")
    }

    @Test("a repeatable setting collects its flags, and a later source replaces the whole list")
    func lists() throws {
        let path = try Self.file("apply: [a.yaml, b.yaml]\n")
        #expect(try ServerConfiguration.resolve(arguments: ["--config", path], environment: [:]).apply == ["a.yaml", "b.yaml"])
        #expect(try ServerConfiguration.resolve(arguments: ["--config", path, "--apply", "c", "--apply", "d"], environment: [:]).apply == ["c", "d"])
    }

    @Test("print-config shows each effective value and its source, and hides a password inside a URL")
    func rendered() throws {
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--ldap-url", "ldap://reader:s3cret@127.0.0.1:389", "--ldap-bind-dn", "cn=admin,dc=x", "--ldap-base", "dc=x"],
            environment: ["STRATUS_API_PORT": "0"]
        )
        let text = configuration.rendered()
        #expect(!text.contains("s3cret"))
        #expect(text.contains("ldap-url: ldap://reader:<redacted>@127.0.0.1:389  # flag"))
        #expect(text.contains("api-port: 0  # environment, STRATUS_API_PORT"))
        #expect(text.contains("ec2-port: 8773  # default"))
        #expect(ServerConfiguration.settings.allSatisfy { text.contains($0.key) })
    }

    @Test("help lists every setting with its variable")
    func help() {
        for setting in ServerConfiguration.settings {
            #expect(ServerConfiguration.helpText.contains("--\(setting.key) <"))
            #expect(ServerConfiguration.helpText.contains(setting.environment))
        }
    }
}
