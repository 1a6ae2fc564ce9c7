import Foundation
import Testing

@testable import StratusCompute

/// Images from the object store (issue 13, part 5): uploaded with awscli, registered with the
/// EC2 API and in a manifest, pending until their files exist, then booted as a real guest from
/// the node's verified cache.
@Suite(.serialized) struct S3ImageTests {
    @Test("an image uploaded with awscli and registered with the EC2 API boots as a real guest: pending until uploaded, then available; the node caches the verified file")
    func bootFromObjectStore() async throws {
        let tiny: TinyImage
        do {
            tiny = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: the tiny image cannot be built on this machine, so no guest can boot: \(error)")
            return
        }
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--hypervisor", "embed", "--apply", "\(examples)/identity.yaml"])
        var stopped = false
        func stop() {
            guard !stopped else { return }
            stopped = true
            MakeRunTests.stopEmbedded(server, cli)
        }
        do {
            try await scenario()
        } catch {
            stop()
            throw error
        }
        stop()

        func scenario() async throws {
            _ = try await server.url(cli: cli, timeout: .seconds(120))
            var environment = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
            environment["AWS_EC2_METADATA_DISABLED"] = "true"
            let aws = { (arguments: [String]) in try await EC2ClientTests.run(["aws", "--endpoint-url", environment["S3_URL"]!, "--region", "nova", "s3"] + arguments, environment: environment) }

            // The manifest's image names objects that are not there yet: pending, saying what to upload.
            try cli.write("tiny.yaml", """
                apiVersion: stratus/v1
                kind: Image
                metadata: {name: tiny-s3, project: acme}
                spec: {source: s3://images/disk.raw, format: raw, kernel: s3://images/vmlinux, ramdisk: s3://images/initrd.cpio, cmdline: "\(TinyImage.cmdline)"}

                """)
            #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/tiny.yaml").status == 0)
            let python = """
                import boto3, json, os, sys, time
                ec2 = boto3.client("ec2", endpoint_url=os.environ["EC2_URL"], region_name="nova")
                def image(name):
                    return [i for i in ec2.describe_images()["Images"] if i["Name"] == name][0]
                step = sys.argv[1]
                if step == "pending":
                    time.sleep(1)
                    print(json.dumps(image("tiny-s3")))
                else:
                    manifest = image("tiny-s3")
                    for _ in range(100):
                        if image("tiny-s3")["State"] == "available": break
                        time.sleep(0.2)
                    registered = ec2.register_image(Name="registered", ImageLocation="images/disk.raw", KernelId=manifest["KernelId"], RamdiskId=manifest["RamdiskId"])["ImageId"]
                    for _ in range(100):
                        state = ec2.describe_images(ImageIds=[registered])["Images"][0]["State"]
                        if state == "available": break
                        time.sleep(0.2)
                    run = ec2.run_instances(ImageId=registered, MinCount=1, MaxCount=1, InstanceType="m1.tiny")
                    print(json.dumps({"state": state, "instance": run["Instances"][0]["InstanceId"], "location": ec2.describe_images(ImageIds=[registered])["Images"][0]["ImageLocation"]}))
                """
            try cli.write("ec2.py", python)
            let pending = try await EC2ClientTests.run(["python3", "\(cli.workDirectory)/ec2.py", "pending"], environment: environment)
            #expect(pending.output.contains("\"State\": \"pending\"") && pending.output.contains("s3://images/disk.raw does not exist yet") || pending.output.contains("bucket images does not exist"), "before the upload: \(pending.output)")

            #expect(try await aws(["mb", "s3://images"]).status == 0)
            for (file, key) in [(tiny.disk, "disk.raw"), (tiny.kernel, "vmlinux"), (tiny.ramdisk, "initrd.cpio")] {
                let copied = try await aws(["cp", file, "s3://images/\(key)"])
                #expect(copied.status == 0, "\(copied.output)")
            }
            let launched = try await EC2ClientTests.run(["python3", "\(cli.workDirectory)/ec2.py", "launch"], environment: environment)
            #expect(launched.status == 0 && launched.output.contains("\"state\": \"available\"") && launched.output.contains("\"location\": \"images/disk.raw\""), "\(launched.output)")
            guard let instance = launched.output.firstMatch(of: /"instance": "(i-[0-9a-f]+)"/)?.1 else { return }

            var console = ""
            var attempts = 0
            var failure = ""
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let result = try await cli.run("console", String(instance), "-p", "acme")
                console = result.stdout
                attempts += 1
                failure = "status \(result.status): \(result.stderr.suffix(500))"
                if result.status == 0 && console.contains(TinyImage.banner) && console.contains("login:") { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            let instances = try await cli.run("get", "instances", "-p", "acme").stdout
            let log = (try? String(contentsOfFile: server.log, encoding: .utf8)).map { String($0.suffix(2500)) } ?? ""
            #expect(console.contains(TinyImage.banner) && console.contains("login:"), "\(instances)\n\(log)\nthe guest booted from the object store's files (\(attempts) attempts, last \(failure)): \(console.suffix(1500))")
            // The node booted from its verified cache, not from the object store's files.
            let cached = (try? FileManager.default.contentsOfDirectory(atPath: "\(cli.dataDirectory)/images")) ?? []
            #expect(cached.count == 3 && cached.allSatisfy { $0.count == 32 }, "the disk, kernel and ramdisk are cached by MD5: \(cached)")
            let size = (try FileManager.default.attributesOfItem(atPath: tiny.disk)[.size] as? Int) ?? -1
            #expect(cached.contains { ((try? FileManager.default.attributesOfItem(atPath: "\(cli.dataDirectory)/images/\($0)"))?[.size] as? Int) == size })
        }
    }
}
