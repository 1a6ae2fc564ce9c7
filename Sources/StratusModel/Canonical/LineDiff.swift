/// A minimal line-based diff (longest common subsequence), for the unified view of `stratus diff`.
public enum LineDiff {
    /// One line of a diff.
    public enum Line: Sendable, Equatable {
        case same(String)
        case removed(String)
        case added(String)
    }

    /// Diffs two texts line by line. Resource specs are short, so the quadratic table is fine.
    public static func diff(_ old: [String], _ new: [String]) -> [Line] {
        let n = old.count
        let m = new.count
        var table = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    table[i][j] = old[i] == new[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
        }
        var lines: [Line] = []
        var i = 0
        var j = 0
        while i < n || j < m {
            if i < n && j < m && old[i] == new[j] {
                lines.append(.same(old[i]))
                i += 1
                j += 1
            } else if i < n && (j == m || table[i + 1][j] >= table[i][j + 1]) {
                lines.append(.removed(old[i]))
                i += 1
            } else {
                lines.append(.added(new[j]))
                j += 1
            }
        }
        return lines
    }
}
