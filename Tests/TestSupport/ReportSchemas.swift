public import Foundation

/// Checks JSON reports against their schemas in `docs/schemas/` with Python's `jsonschema` (Draft 2020-12),
/// so the schemas a user's tools validate against are the ones the tests hold the real reports to.
public enum ReportSchemas {
    /// The folder of the schemas.
    public static let folder = repositoryRoot + "/docs/schemas"

    /// What is wrong with each report: one line per violation (`compress: $.tensors[0].count: 'x' is not of
    /// type 'integer'`), empty when every report is valid. Every schema in the folder is also checked
    /// against the metaschema, and the `$defs` that several schemas repeat (`compression`, `tensor`,
    /// `lora_modules_dropped`) must be identical in each.
    ///
    /// - Parameter reports: (schema name without `.schema.json`, the report's bytes).
    /// - Throws: ``Python/Failure`` when the check itself cannot run (no `jsonschema`, a report that is not JSON).
    public static func violations(_ reports: [(schema: String, report: Data)]) throws -> [String] {
        let scratch = scratchDirectory("schemas")
        var pairs: [[String]] = []
        for (i, r) in reports.enumerated() {
            let path = scratch + "/\(i)-\(r.schema).json"
            try r.report.write(to: URL(fileURLWithPath: path))
            pairs.append([r.schema, path])
        }
        let list = scratch + "/reports.json"
        try JSONSerialization.data(withJSONObject: pairs).write(to: URL(fileURLWithPath: list))
        let script = """
            import glob, json, os, sys
            import jsonschema
            folder, listing = sys.argv[1], sys.argv[2]
            schemas, problems, shared = {}, [], {}
            for path in sorted(glob.glob(os.path.join(folder, "*.schema.json"))):
                name = os.path.basename(path)[:-len(".schema.json")]
                schemas[name] = json.load(open(path, encoding="utf-8"))
                try:
                    jsonschema.Draft202012Validator.check_schema(schemas[name])
                except jsonschema.SchemaError as e:
                    problems.append(f"{name}.schema.json is not a valid schema: {e.message}")
                for key, value in schemas[name].get("$defs", {}).items():
                    if key in ("compression", "tensor", "lora_modules_dropped"):
                        if key in shared and shared[key][1] != value:
                            problems.append(f"$defs/{key} differs between {shared[key][0]} and {name}")
                        shared.setdefault(key, (name, value))
            for name, path in json.load(open(listing)):
                if name not in schemas:
                    problems.append(f"{name}: no schema {name}.schema.json"); continue
                validator = jsonschema.Draft202012Validator(schemas[name])
                for e in validator.iter_errors(json.load(open(path, encoding="utf-8"))):
                    problems.append(f"{name}: {e.json_path}: {e.message}")
            print(json.dumps(problems))
            """
        let out = try Python.output(script, arguments: [folder, list])
        return try JSONSerialization.jsonObject(with: out) as? [String] ?? ["the checker printed no list"]
    }
}
