import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore

/// One dashboard page: its title, status and the HTML of its main part, rendered into the layout.
struct Page {
    var title: String
    var status: HTTPResponse.Status = .ok
    var body: String

    /// The whole document, with the navigation and the session's CSRF token for its forms.
    func response(session: Session?) -> Response {
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(h(title)) · Stratus</title><link rel="stylesheet" href="/ui/assets/app.css"><script src="/ui/assets/app.js" defer></script></head>
            <body>
            """
        if let session {
            html += """
                <header><a class="brand" href="/ui">Stratus</a><nav>
                <a href="/ui">Overview</a>
                """
            for kind in DashboardHTML.listedKinds { html += "<a href=\"/ui/resources?kind=\(kind.rawValue)\">\(h(DashboardHTML.plural(kind)))</a>" }
            if session.principal.isCloudAdmin || session.principal.globalRoles.contains(.itsec) { html += "<a href=\"/ui/drift\">Drift</a>" }
            html += """
                </nav><form class="logout" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="\(h(session.csrf))">
                <span id="user">\(h(session.principal.user))</span> <button id="logout" type="submit">Sign out</button></form></header>
                """
        }
        html += "<main data-csrf=\"\(h(session?.csrf ?? ""))\"><h1>\(h(title))</h1>\n\(body)\n</main></body></html>\n"
        return Response(status: status, headers: DashboardHTML.headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// Escapes text for HTML (element content and quoted attribute values).
func h(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// The HTML of each page's main part.
enum DashboardHTML {
    /// Pages name nothing outside this server: scripts, styles, images and forms are its own.
    static let headers: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Frame-Options")!: "DENY",
    ]

    static let listedKinds: [Kind] = [.instance, .volume, .snapshot, .network, .address, .securityGroup, .image, .keyPair, .node, .gitSync]

    static func plural(_ kind: Kind) -> String {
        switch kind {
        case .address: "Addresses"
        case .securityGroup: "Security groups"
        case .keyPair: "Key pairs"
        case .gitSync: "Git syncs"
        case .instanceType: "Instance types"
        default: kind.rawValue + "s"
        }
    }

    static func login(next: String, error: String?) -> String {
        """
        \(error.map { "<p class=\"error\" id=\"error\">\(h($0))</p>" } ?? "")
        <form id="login" class="card narrow" method="post" action="/ui/login">
        <input type="hidden" name="next" value="\(h(next))">
        <label>Access key <input name="accessKey" autocomplete="username" required></label>
        <label>Secret key <input name="secretKey" type="password" autocomplete="current-password" required></label>
        <button id="login-submit" type="submit">Sign in</button>
        <p class="hint">stratus credentials USER prints a user's keys; stratus dashboard prints a sign-in link.</p>
        </form>
        """
    }

    static func error(_ message: String) -> String {
        "<p class=\"error\" id=\"error\">\(h(message))</p><p><a href=\"/ui\">Overview</a></p>"
    }

    static func empty(_ message: String) -> String { "<p class=\"hint\">\(h(message))</p>" }

    static func overview(project: String, projects: [String], quotas: [QuotaLine], health: [CensusRow.Health: Int], kinds: [String: Int]) -> String {
        var html = "<form class=\"filters\" method=\"get\" action=\"/ui\"><label>Project <select name=\"project\" data-autosubmit>"
        for name in projects { html += "<option\(name == project ? " selected" : "")>\(h(name))</option>" }
        html += "</select></label><noscript><button>Show</button></noscript></form>"
        html += "<section class=\"card\"><h2>Health</h2><div id=\"health\" class=\"bar\">"
        for category in CensusRow.Health.allCases {
            let count = health[category] ?? 0
            if count > 0 { html += "<span class=\"segment \(category.rawValue.lowercased())\" data-count=\"\(count)\" title=\"\(category.rawValue): \(count)\"></span>" }
        }
        html += "</div><ul class=\"legend\">"
        for category in CensusRow.Health.allCases {
            html += "<li><span class=\"dot \(category.rawValue.lowercased())\"></span>\(category.rawValue) <b data-health=\"\(category.rawValue)\">\(health[category] ?? 0)</b></li>"
        }
        html += "</ul><p class=\"hint\">\(health.values.reduce(0, +)) resources in \(h(project))</p></section>"
        html += "<section class=\"card\"><h2>Quotas</h2><table id=\"quota\"><thead><tr><th>Quota</th><th>Used</th><th>Limit</th><th></th></tr></thead><tbody>"
        for line in quotas {
            let limit = line.limit.map(String.init) ?? "unlimited"
            let meter = line.limit.map { "<meter min=\"0\" max=\"\(max($0, 1))\" low=\"\(Double($0) * 0.7)\" high=\"\(Double($0) * 0.9)\" optimum=\"0\" value=\"\(line.used)\"></meter>" } ?? ""
            html += "<tr data-quota=\"\(h(line.field))\"><td>\(h(line.noun.prefix(1).uppercased() + line.noun.dropFirst()))</td><td class=\"used\">\(line.used)</td><td class=\"limit\">\(limit)</td><td>\(meter)</td></tr>"
        }
        html += "</tbody></table></section>"
        html += "<section class=\"card\"><h2>Resources</h2><ul class=\"kinds\">"
        for (kind, count) in kinds.sorted(by: { $0.key < $1.key }) {
            html += "<li><a href=\"/ui/resources?kind=\(h(kind))&amp;project=\(h(Dashboard.percent(project)))\">\(h(kind))</a> \(count)</li>"
        }
        html += "</ul></section>"
        html += live("/ui/events?project=\(Dashboard.percent(project))", title: "Live events in \(project)")
        return html
    }

    static func live(_ stream: String, title: String, events: [StoredEvent] = []) -> String {
        var html = "<section class=\"card\"><h2>\(h(title)) <span id=\"live\" class=\"status\">connecting…</span></h2><ul id=\"events\" class=\"events\" data-stream=\"\(h(stream))\">"
        for event in events.reversed() { html += eventItem(event) }
        return html + "</ul></section>"
    }

    static func eventItem(_ event: StoredEvent) -> String {
        "<li class=\"event \(event.type == "Warning" ? "warning" : "")\" data-reason=\"\(h(event.reason))\"><time>\(h(event.time))</time> <b>\(h(event.reason))</b> \(h(event.kind)) \(h(event.project.isEmpty ? event.name : "\(event.project)/\(event.name)")): \(h(event.message))</li>"
    }

    static func list(kind: Kind, page: ResourcePage, number: Int, pageSize: Int, projects: [String], query: Parameters) -> String {
        let project = query["project"].map(String.init) ?? ""
        let label = query["label"].map(String.init) ?? ""
        let phase = query["phase"].map(String.init) ?? ""
        var html = "<form class=\"filters\" id=\"filters\" method=\"get\" action=\"/ui/resources\"><input type=\"hidden\" name=\"kind\" value=\"\(h(kind.rawValue))\">"
        if kind.scope == .project {
            html += "<label>Project <select name=\"project\"><option value=\"\">every project</option>"
            for name in projects { html += "<option\(name == project ? " selected" : "")>\(h(name))</option>" }
            html += "</select></label>"
        }
        html += "<label>Label <input name=\"label\" placeholder=\"key=value\" value=\"\(h(label))\"></label>"
        html += "<label>Phase <input name=\"phase\" placeholder=\"Running\" value=\"\(h(phase))\"></label><button type=\"submit\">Filter</button></form>"
        if query["done"] == "delete" { html += "<p class=\"notice\" id=\"notice\">Deletion requested.</p>" }
        let first = page.total == 0 ? 0 : page.offset + 1
        let last = page.offset + page.items.count
        html += "<p class=\"hint\" id=\"count\">\(first)–\(last) of \(page.total)</p>"
        html += "<table id=\"resources\"><thead><tr>\(kind.scope == .project ? "<th>Project</th>" : "")<th>Name</th><th>ID</th><th>Phase</th><th>Ready</th><th>Labels</th></tr></thead><tbody>"
        for item in page.items {
            let link = "/ui/resource?kind=\(kind.rawValue)&project=\(Dashboard.percent(item.key.project))&name=\(Dashboard.percent(item.key.name))"
            let ready = item.resource.status?.condition(.ready)
            html += "<tr data-name=\"\(h(item.key.name))\">\(kind.scope == .project ? "<td>\(h(item.key.project))</td>" : "")"
            html += "<td class=\"name\"><a href=\"\(h(link))\">\(h(item.key.name))</a></td><td>\(h(item.metadata.id ?? ""))</td>"
            html += "<td class=\"phase\"><span class=\"pill \(h(item.displayPhase.lowercased()))\">\(h(item.displayPhase))</span></td>"
            html += "<td title=\"\(h(ready?.message ?? ""))\">\(h(ready.map { $0.status.rawValue } ?? "Unknown"))</td>"
            html += "<td>\(h(item.metadata.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))</td></tr>"
        }
        html += "</tbody></table><nav class=\"pager\">"
        func pageLink(_ target: Int, _ text: String, _ rel: String) -> String {
            var items = ["kind=\(kind.rawValue)", "page=\(target)"]
            if !project.isEmpty { items.append("project=\(Dashboard.percent(project))") }
            if !label.isEmpty { items.append("label=\(Dashboard.percent(label))") }
            if !phase.isEmpty { items.append("phase=\(Dashboard.percent(phase))") }
            return "<a rel=\"\(rel)\" href=\"/ui/resources?\(h(items.joined(separator: "&")))\">\(text)</a>"
        }
        if number > 1 { html += pageLink(number - 1, "← Previous", "prev") }
        if last < page.total { html += pageLink(number + 1, "Next →", "next") }
        return html + "</nav>"
    }

    static func detail(_ resource: StoredResource, events: [StoredEvent], console: String?, canWrite: Bool, notice: String?, csrf: String) -> String {
        let key = resource.key
        var html = ""
        if let notice { html += "<p class=\"notice\" id=\"notice\">\(h(notice.prefix(1).uppercased() + notice.dropFirst())) requested.</p>" }
        html += "<section class=\"card\"><p>Phase <span id=\"phase\" class=\"pill \(h(resource.displayPhase.lowercased()))\">\(h(resource.displayPhase))</span>"
        if let id = resource.metadata.id { html += " · ID <code>\(h(id))</code>" }
        html += " · generation \(resource.generation)</p>"
        if canWrite {
            html += "<div class=\"actions\">"
            var verbs: [String] = []
            if key.kind == .instance { verbs = ["reboot", "stop", "start"] }
            verbs.append("delete")
            for verb in verbs {
                let confirm = verb == "delete" ? " data-confirm=\"Delete \(h(key.kind.rawValue)) \(h(key.qualifiedName))? This cannot be undone.\"" : ""
                html += """
                    <form class="action" method="post" action="/ui/action" data-action="\(verb)"\(confirm)>
                    <input type="hidden" name="csrf" value="\(h(csrf))"><input type="hidden" name="kind" value="\(h(key.kind.rawValue))">
                    <input type="hidden" name="project" value="\(h(key.project))"><input type="hidden" name="name" value="\(h(key.name))">
                    <input type="hidden" name="action" value="\(verb)"><button id="action-\(verb)" class="\(verb == "delete" ? "danger" : "")" type="submit">\(verb.prefix(1).uppercased() + verb.dropFirst())</button></form>
                    """
            }
            html += "</div>"
        } else {
            html += "<p class=\"hint\" id=\"read-only\">You may look at this \(h(key.kind.rawValue.lowercased())), not change it.</p>"
        }
        html += "</section><section class=\"card\"><h2>Spec</h2><pre id=\"spec\">\(h(pretty(resource.resource.spec)))</pre></section>"
        let status = resource.resource.status
        html += "<section class=\"card\"><h2>Conditions</h2><table id=\"conditions\"><thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>"
        for condition in status?.conditions ?? [] {
            html += "<tr data-condition=\"\(h(condition.type.rawValue))\"><td>\(h(condition.type.rawValue))</td><td>\(h(condition.status.rawValue))</td><td>\(h(condition.reason.rawValue))</td><td>\(h(condition.message ?? ""))</td><td>\(h(condition.lastTransitionTime))</td></tr>"
        }
        html += "</tbody></table>"
        if let details = status?.details, !details.isEmpty {
            html += "<h2>Details</h2><table id=\"details\"><tbody>"
            for (name, value) in details.sorted(by: { $0.key < $1.key }) { html += "<tr><th>\(h(name))</th><td>\(h(value.displayText))</td></tr>" }
            html += "</tbody></table>"
        }
        html += "</section>"
        html += live("/ui/events?kind=\(key.kind.rawValue)&project=\(Dashboard.percent(key.project))&name=\(Dashboard.percent(key.name))", title: "Events", events: events)
        if key.kind == .instance {
            html += "<section class=\"card\"><h2>Console log</h2><pre id=\"console\">\(h(console ?? "no console log: the guest has not started, or the hypervisor keeps none (test:///)"))</pre></section>"
        }
        return html
    }

    static func drift(_ findings: [DriftFinding], note: String?) -> String {
        var html = note.map { "<p class=\"hint\">\(h($0))</p>" } ?? ""
        html += "<p class=\"hint\">\(findings.count) finding(s): what the hypervisor and the directory hold that the store does not say.</p>"
        html += "<table id=\"drift\"><thead><tr><th>Object</th><th>Domain</th><th>Problem</th></tr></thead><tbody>"
        for finding in findings { html += "<tr><td>\(h(finding.object))</td><td>\(h(finding.domain))</td><td>\(h(finding.problem))</td></tr>" }
        return html + "</tbody></table>"
    }

    static func pretty(_ spec: ResourceSpec) -> String {
        guard let data = try? spec.canonicalJSON(), let object = try? JSONSerialization.jsonObject(with: data),
              let text = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "" }
        return String(decoding: text, as: UTF8.self)
    }
}
