//! Commit message templates render as Flux (Go text/template + Sprig) does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use image_update::template::{
    CommitData, DEFAULT_MESSAGE_TEMPLATE, Template, TemplateError, Value, render_commit_message,
    validate_commit_template,
};
use image_update::{Change, ObjectIdentifier, UpdateResult};

fn object(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectIdentifier {
    ObjectIdentifier {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn change(old: &str, new: &str, setter: &str) -> Change {
    Change {
        old_value: old.into(),
        new_value: new.into(),
        setter: setter.into(),
    }
}

/// Two files: a Deployment with one change, a CronJob with two.
fn result() -> UpdateResult {
    let mut result = UpdateResult::default();
    result
        .file_changes
        .entry("deploy/app.yaml".into())
        .or_default()
        .insert(
            object("apps/v1", "Deployment", "default", "app"),
            vec![change(
                "ghcr.io/org/app:1.0.0",
                "ghcr.io/org/app:5.0.3",
                "flux-system:app",
            )],
        );
    result
        .file_changes
        .entry("deploy/worker.yaml".into())
        .or_default()
        .insert(
            object("batch/v1", "CronJob", "default", "worker"),
            vec![
                change("1.0.0", "1.1.0", "flux-system:app:tag"),
                change(
                    "ghcr.io/org/sidecar:2.0",
                    "ghcr.io/org/sidecar:2.1",
                    "flux-system:sidecar",
                ),
            ],
        );
    result
}

fn values() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cluster".to_string(), "prod".to_string()),
        ("env".to_string(), "staging".to_string()),
    ])
}

fn render(template: &str) -> Result<String, TemplateError> {
    let result = result();
    let values = values();
    let data = CommitData {
        automation_name: "my-automation",
        automation_namespace: "flux-system",
        changed: &result,
        values: &values,
    };
    render_commit_message(template, &data)
}

fn ok(template: &str) -> String {
    match render(template) {
        Ok(text) => text,
        Err(e) => panic!("{template:?} failed: {e}"),
    }
}

fn err(template: &str) -> String {
    match render(template) {
        Ok(text) => panic!("{template:?} rendered {text:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn flux_docs_example_listing_files_objects_and_changes() {
    let template = "Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
";
    let expected = "Automated image update

Automation name: flux-system/my-automation

Files:
- deploy/app.yaml
- deploy/worker.yaml
Objects:
- Deployment app
  Changes:
    - ghcr.io/org/app:1.0.0 -> ghcr.io/org/app:5.0.3
- CronJob worker
  Changes:
    - 1.0.0 -> 1.1.0

    - ghcr.io/org/sidecar:2.0 -> ghcr.io/org/sidecar:2.1
";
    assert_eq!(ok(template), expected);
}

#[test]
fn flux_docs_example_with_functions() {
    let template = "Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
  {{ if contains \"5.0.3\" $change.NewValue -}}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
  {{ else -}}
    [skip ci] wrong image
  {{ end -}}
{{ end -}}
{{ end -}}
";
    let expected = "Automated image update

Automation name: flux-system/my-automation

Files:
- deploy/app.yaml
- deploy/worker.yaml
Objects:
- deployment app
  Changes:
  - ghcr.io/org/app:1.0.0 -> ghcr.io/org/app:5.0.3
  - cronjob worker
  Changes:
  [skip ci] wrong image
  
  [skip ci] wrong image
  ";
    assert_eq!(ok(template), expected);
}

#[test]
fn flux_docs_example_with_values() {
    assert_eq!(
        ok("Automated image update by Flux for cluster {{ .Values.cluster }}."),
        "Automated image update by Flux for cluster prod."
    );
}

#[test]
fn empty_template_renders_flux_default() {
    assert_eq!(ok(""), DEFAULT_MESSAGE_TEMPLATE);
    assert_eq!(
        DEFAULT_MESSAGE_TEMPLATE,
        "Update from image update automation"
    );
}

#[test]
fn data_prints_as_go_prints_it() {
    assert_eq!(
        ok("{{ .AutomationObject.Namespace }}/{{ .AutomationObject.Name }}"),
        "flux-system/my-automation"
    );
    assert_eq!(
        ok("{{ printf \"%v|%s\" .AutomationObject .AutomationObject }}"),
        "flux-system/my-automation|flux-system/my-automation"
    );
    assert_eq!(
        ok("{{ range $o, $c := .Changed.Objects }}{{ $o }}={{ $c }};{{ end }}"),
        "{{{apps/v1 Deployment} {app default}}}=[{ghcr.io/org/app:1.0.0 ghcr.io/org/app:5.0.3 flux-system:app}];\
         {{{batch/v1 CronJob} {worker default}}}=[{1.0.0 1.1.0 flux-system:app:tag} {ghcr.io/org/sidecar:2.0 ghcr.io/org/sidecar:2.1 flux-system:sidecar}];"
    );
    assert_eq!(
        ok("{{ range .Changed.Changes }}{{ .Setter }} {{ end }}"),
        "flux-system:app flux-system:app:tag flux-system:sidecar "
    );
    assert_eq!(
        ok(
            "{{ range $o, $_ := .Changed.Objects }}{{ $o.APIVersion }} {{ $o.Kind }} {{ $o.Namespace }}/{{ $o.Name }};{{ end }}"
        ),
        "apps/v1 Deployment default/app;batch/v1 CronJob default/worker;"
    );
    assert_eq!(
        ok("{{ range $f, $objs := .Changed.FileChanges }}{{ $f }}:{{ len $objs }} {{ end }}"),
        "deploy/app.yaml:1 deploy/worker.yaml:1 "
    );
    assert_eq!(ok("{{ .Values }}"), "map[cluster:prod env:staging]");
    assert_eq!(
        ok("{{ .Values.missing }}|{{ index .Values \"missing\" }}|"),
        "<no value>||"
    );
    assert_eq!(ok("{{ .Values.missing.deeper }}"), "<no value>");
    assert_eq!(
        ok("{{ printf \"%+v\" (index .Changed.Changes 1) }}"),
        "{OldValue:1.0.0 NewValue:1.1.0 Setter:flux-system:app:tag}"
    );
    assert_eq!(
        ok("{{ (index .Changed.Changes 0).Setter }}"),
        "flux-system:app"
    );
    assert_eq!(
        ok("{{ len .Changed.Changes }} {{ len .Changed.Objects }}"),
        "3 2"
    );
    assert_eq!(
        ok("{{ toJson .AutomationObject }}"),
        r#"{"Namespace":"flux-system","Name":"my-automation"}"#
    );
    assert_eq!(
        ok("{{ range $o, $_ := .Changed.Objects }}{{ toJson $o }}{{ end }}"),
        r#"{"apiVersion":"apps/v1","kind":"Deployment","name":"app","namespace":"default"}{"apiVersion":"batch/v1","kind":"CronJob","name":"worker","namespace":"default"}"#
    );
    // Go's encoding/json cannot write struct map keys; Sprig then gives "".
    assert_eq!(ok("[{{ toJson .Changed.Objects }}]"), "[]");
}

#[test]
fn removed_updated_field_is_reported_as_flux_does() {
    let message = "template uses removed '.Updated' field. Please use '.Changed' instead. \
                   See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template";
    for template in [
        "{{ .Updated }}",
        "{{ range .Updated.Images }}{{ println . }}{{ end }}",
        "Files:\n{{ range $filename, $_ := .Updated.Files -}}\n- {{ $filename }}\n{{ end -}}",
    ] {
        let error = render(template).unwrap_err();
        assert_eq!(
            error,
            TemplateError::RemovedField {
                field: ".Updated".into()
            }
        );
        assert_eq!(error.to_string(), message);
        assert_eq!(validate_commit_template(template).unwrap_err(), error);
    }
    assert_eq!(
        render("{{ .Changed.ImageResult }}").unwrap_err(),
        TemplateError::RemovedField {
            field: ".Changed.ImageResult".into()
        }
    );
    // Under `if false` Go never evaluates the field: Flux renders it.
    assert_eq!(ok("x{{ if false }}{{ .Updated }}{{ end }}"), "x");
    assert!(validate_commit_template("{{ .Changed.Changes }}").is_ok());
    assert!(
        validate_commit_template("{{ range .Changed.Changes }}{{ .Updated }}{{ end }}").is_ok()
    );
}

#[test]
fn execution_errors_read_as_go() {
    assert_eq!(
        err("{{ .Nope }}"),
        "template: commit message:1:3: executing \"commit message\" at <.Nope>: can't evaluate field Nope in type source.TemplateData"
    );
    assert_eq!(
        err("line\n  {{ .AutomationObject.Foo }}"),
        "template: commit message:2:5: executing \"commit message\" at <.AutomationObject.Fo...>: can't evaluate field Foo in type types.NamespacedName"
    );
    assert_eq!(
        err("{{ index .Changed.Changes 5 }}"),
        "template: commit message:1:3: executing \"commit message\" at <index .Changed.Chang...>: error calling index: index out of range: 5"
    );
    assert_eq!(
        err("{{ upper 5 }}"),
        "template: commit message:1:9: executing \"commit message\" at <5>: wrong type for value; expected string; got int"
    );
    assert_eq!(
        err("{{ eq 1 \"a\" }}"),
        "template: commit message:1:3: executing \"commit message\" at <eq 1 \"a\">: error calling eq: incompatible types for comparison"
    );
    assert_eq!(
        err("{{ upper \"a\" \"b\" }}"),
        "template: commit message:1:3: executing \"commit message\" at <upper>: wrong number of args for upper: want 1 got 2"
    );
    assert_eq!(
        err("{{ nil }}"),
        "template: commit message:1:3: executing \"commit message\" at <nil>: nil is not a command"
    );
    assert_eq!(
        err("{{ range \"abc\" }}{{ end }}"),
        "template: commit message:1:9: executing \"commit message\" at <\"abc\">: range can't iterate over abc"
    );
    assert_eq!(
        err("{{ template \"missing\" }}"),
        "template: commit message:1:3: executing \"commit message\" at <{{template \"missing\"...>: template \"missing\" not defined"
    );
    let flux = render("{{ .Nope }}").unwrap_err().flux_message();
    assert!(
        flux.starts_with("failed to run template from spec: template: commit message:1:3:"),
        "{flux}"
    );
}

#[test]
fn parse_errors_read_as_go() {
    assert_eq!(
        err("{{ foo }}"),
        "template: commit message:1: function \"foo\" not defined"
    );
    assert_eq!(
        err("{{ now | date \"2006\" }}"),
        "template: commit message:1: function \"now\" not defined"
    );
    assert_eq!(
        err("line\n{{ if .Values }}"),
        "template: commit message:2: unexpected EOF"
    );
    assert_eq!(
        err("{{ .Values }"),
        "template: commit message:1: unexpected \"}\" in operand"
    );
    assert_eq!(
        err("a\n{{ .Values "),
        "template: commit message:2: unclosed action"
    );
    assert_eq!(
        err("{{ end }}"),
        "template: commit message:1: unexpected {{end}}"
    );
    assert_eq!(
        err("{{ $x }}"),
        "template: commit message:1: undefined variable \"$x\""
    );
    assert_eq!(
        err("{{ break }}"),
        "template: commit message:1: {{break}} outside {{range}}"
    );
    assert_eq!(
        err("{{ }}"),
        "template: commit message:1: missing value for command"
    );
    assert_eq!(
        err("{{ if }}{{ end }}"),
        "template: commit message:1: missing value for if"
    );
    assert_eq!(
        err("{{ \"abc }}"),
        "template: commit message:1: unterminated quoted string"
    );
    assert_eq!(
        err("{{/* open }}"),
        "template: commit message:1: unclosed comment"
    );
    assert_eq!(
        err("{{ 3x }}"),
        "template: commit message:1: bad number syntax: \"3x\""
    );
    assert_eq!(
        err("{{ .A | 3 }}"),
        "template: commit message:1: non executable command in pipeline stage 2"
    );
    let flux = render("{{ foo }}").unwrap_err().flux_message();
    assert_eq!(
        flux,
        "unable to create commit message template from spec: template: commit message:1: function \"foo\" not defined"
    );
}

fn run(template: &str) -> String {
    let parsed = Template::parse("t", template).unwrap_or_else(|e| panic!("{template:?}: {e}"));
    parsed
        .execute(&Value::Nil)
        .unwrap_or_else(|e| panic!("{template:?}: {e}"))
}

#[test]
fn text_trim_markers_and_comments() {
    assert_eq!(run("a  {{- \"x\" -}}  \n b"), "axb");
    assert_eq!(run("a {{/* comment */}} b"), "a  b");
    assert_eq!(run("a {{- /* comment */ -}} b"), "ab");
    assert_eq!(run("x {{-3}}"), "x -3");
    assert_eq!(run("{{ 1 }}\n{{- 2 }}"), "12");
}

#[test]
fn literals() {
    assert_eq!(
        run("{{ `raw\\n` }}|{{ \"esc\\t\\\"q\\\"\" }}"),
        "raw\\n|esc\t\"q\""
    );
    assert_eq!(
        run("{{ 0x10 }} {{ 1e3 }} {{ 1.5 }} {{ -7 }} {{ 'a' }} {{ 1_000 }}"),
        "16 1000 1.5 -7 97 1000"
    );
    assert_eq!(run("{{ true }} {{ false }}"), "true false");
    assert_eq!(run("{{ print nil }}"), "<nil>");
}

#[test]
fn variables_and_control_flow() {
    assert_eq!(run("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(run("{{ with $y := \"v\" }}{{ $y }}{{ . }}{{ end }}"), "vv");
    assert_eq!(run("{{ with \"\" }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(
        run("{{ with \"\" }}x{{ else with \"w\" }}{{ . }}{{ end }}"),
        "w"
    );
    assert_eq!(run("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(
        run(
            "{{ range $i, $v := list 1 2 3 4 }}{{ if eq $v 2 }}{{ continue }}{{ end }}{{ if eq $v 4 }}{{ break }}{{ end }}{{ $i }}:{{ $v }} {{ end }}"
        ),
        "0:1 2:3 "
    );
    assert_eq!(
        run("{{ range $k, $v := dict \"b\" 2 \"a\" 1 }}{{ $k }}={{ $v }} {{ end }}"),
        "a=1 b=2 "
    );
    assert_eq!(
        run("{{ range $v := dict \"b\" 2 \"a\" 1 }}{{ $v }}{{ end }}"),
        "12"
    );
    assert_eq!(run("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        run(
            "{{ $e := \"staging\" }}{{ if eq $e \"prod\" }}P{{ else if eq $e \"staging\" }}S{{ else }}O{{ end }}"
        ),
        "S"
    );
    assert_eq!(
        run("{{ $n := 0 }}{{ range list 1 2 3 }}{{ $n = . }}{{ end }}{{ $n }}"),
        "3"
    );
    assert_eq!(run("{{ $.x }}"), "<no value>");
}

#[test]
fn define_template_and_block() {
    assert_eq!(
        ok(
            "{{ define \"item\" }}- {{ .Setter }}\n{{ end }}{{ range .Changed.Changes }}{{ template \"item\" . }}{{ end }}"
        ),
        "- flux-system:app\n- flux-system:app:tag\n- flux-system:sidecar\n"
    );
    assert_eq!(
        ok("{{ block \"b\" .Values.env }}[{{ . }}]{{ end }}"),
        "[staging]"
    );
    assert_eq!(
        err("{{ define \"a\" }}{{ template \"a\" . }}{{ end }}{{ template \"a\" . }}"),
        "template: commit message:1:19: executing \"a\" at <{{template \"a\" .}}>: exceeded maximum template depth (100)"
    );
}

#[test]
fn hostile_templates_are_bounded() {
    let too_much = render("{{ range 100000 }}{{ repeat 100 \"x\" }}{{ end }}")
        .unwrap_err()
        .to_string();
    assert!(too_much.contains("template output exceeds"), "{too_much}");
    let too_long = render("{{ range 1000000000 }}{{ end }}")
        .unwrap_err()
        .to_string();
    assert!(too_long.contains("steps"), "{too_long}");
    let big_repeat = render("{{ repeat 100000000 \"xxxxxxxx\" }}")
        .unwrap_err()
        .to_string();
    assert!(big_repeat.contains("error calling repeat"), "{big_repeat}");
    let deep = "{{ (1) }}";
    assert_eq!(run(deep), "1");
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
    assert!(Template::parse("t", &nested).is_err());
}

#[test]
fn builtins() {
    assert_eq!(
        run("{{ and 1 0 \"x\" }} {{ and 1 2 }} {{ or 0 \"\" \"y\" }} {{ or 0 \"\" }}"),
        "0 2 y "
    );
    assert_eq!(run("{{ not 0 }} {{ not \"a\" }}"), "true false");
    assert_eq!(
        run("{{ len \"abc\" }} {{ len (list 1 2) }} {{ len (dict \"a\" 1) }}"),
        "3 2 1"
    );
    assert_eq!(
        run("{{ index (list 1 2 3) 1 }} {{ index (dict \"a\" (list 5 6)) \"a\" 1 }}"),
        "2 6"
    );
    assert_eq!(
        run("{{ slice \"abcdef\" 1 3 }} {{ slice (list 1 2 3 4) 1 }} {{ slice \"abc\" }}"),
        "bc [2 3 4] abc"
    );
    assert_eq!(run("{{ print \"a\" 1 2 \"b\" }}"), "a1 2b");
    assert_eq!(run("{{ println \"a\" 1 }}"), "a 1\n");
    assert_eq!(
        run(
            "{{ printf \"%s=%d %v %q %t %x %5s|%-5s|%05d|%.2f|%X|%3d|%-4d|\" \"k\" 42 1.5 \"q\" true 255 \"ab\" \"cd\" 42 3.14159 \"hi\" 7 5 }}"
        ),
        "k=42 1.5 \"q\" true ff    ab|cd   |00042|3.14|6869|  7|5   |"
    );
    assert_eq!(run("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
    assert_eq!(run("{{ printf \"%s %s\" \"a\" }}"), "a %!s(MISSING)");
    assert_eq!(
        run("{{ printf \"%s\" \"a\" \"b\" }}"),
        "a%!(EXTRA string=b)"
    );
    assert_eq!(
        run("{{ printf \"%v %s %d\" (list 1 2) (list \"a\" \"b\") (list 3 4) }}"),
        "[1 2] [a b] [3 4]"
    );
    assert_eq!(
        run("{{ printf \"%v\" (dict \"a\" 1) }} {{ printf \"%%\" }}"),
        "map[a:1] %"
    );
    assert_eq!(
        run("{{ eq 1 2 1 }} {{ eq \"a\" \"b\" }} {{ ne \"a\" \"b\" }}"),
        "true false true"
    );
    assert_eq!(
        run("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}"),
        "true true true false"
    );
    assert_eq!(
        run("{{ html \"<a href='x'>&\\\"\" }}"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    );
    assert_eq!(run("{{ js \"it's <b>\" }}"), "it\\'s \\u003Cb\\u003E");
    assert_eq!(run("{{ urlquery \"a b&c=d/é\" }}"), "a+b%26c%3Dd%2F%C3%A9");
    assert_eq!(run("{{ \"abc\" | upper | printf \"%s!\" }}"), "ABC!");
    assert_eq!(
        run("{{ 1.5 }} {{ 1e6 }} {{ 100000.0 }}"),
        "1.5 1e+06 100000"
    );
}

#[test]
fn sprig_functions() {
    assert_eq!(
        run("{{ upper \"aB\" }} {{ lower \"aB\" }} {{ title \"hello world-foo\" }}"),
        "AB ab Hello World-Foo"
    );
    assert_eq!(
        run(
            "[{{ trim \"  x \\n\" }}] {{ trimPrefix \"v\" \"v1.2\" }} {{ trimSuffix \"-rc\" \"1.0-rc\" }} {{ trimAll \"$\" \"$$5$\" }}"
        ),
        "[x] 1.2 1.0 5"
    );
    assert_eq!(run("{{ replace \".\" \"-\" \"1.2.3\" }}"), "1-2-3");
    assert_eq!(
        run(
            "{{ contains \"ap\" \"app\" }} {{ hasPrefix \"ghcr\" \"ghcr.io\" }} {{ hasSuffix \"io\" \"ghcr.io\" }} {{ hasPrefix \"x\" \"y\" }}"
        ),
        "true true true false"
    );
    assert_eq!(run("{{ join \", \" (list \"a\" \"b\" 1) }}"), "a, b, 1");
    assert_eq!(
        run(
            "{{ split \".\" \"a.b\" }} {{ (split \":\" \"img:tag\")._1 }} {{ splitList \",\" \"a,b\" }}"
        ),
        "map[_0:a _1:b] tag [a b]"
    );
    assert_eq!(
        run(
            "{{ default \"x\" \"\" }} {{ default \"x\" \"y\" }} {{ \"\" | default \"d\" }} {{ $.missing | default \"m\" }}"
        ),
        "x y d m"
    );
    assert_eq!(
        run("{{ empty \"\" }} {{ empty (list) }} {{ empty 0 }} {{ empty \"a\" }}"),
        "true true true false"
    );
    assert_eq!(ok("{{ empty .AutomationObject }}"), "false");
    assert_eq!(
        run("{{ quote \"a\" 1 }} {{ squote \"a\" }} {{ quote \"say \\\"hi\\\"\" }}"),
        "\"a\" \"1\" 'a' \"say \\\"hi\\\"\""
    );
    assert_eq!(
        run("{{ trunc 3 \"abcdef\" }} {{ trunc -2 \"abcdef\" }} {{ trunc 10 \"ab\" }}"),
        "abc ef ab"
    );
    assert_eq!(
        run("{{ repeat 3 \"ab\" }} {{ nospace \"a b\\tc\" }}"),
        "ababab abc"
    );
    assert_eq!(
        run("{{ indent 2 \"a\\nb\" }}|{{ nindent 2 \"a\" }}"),
        "  a\n  b|\n  a"
    );
    assert_eq!(
        run("{{ list 1 \"a\" }} {{ dict \"a\" 1 \"b\" }}"),
        "[1 a] map[a:1 b:]"
    );
    assert_eq!(
        run(
            "{{ keys (dict \"b\" 1 \"a\" 2) | sortAlpha }} {{ sortAlpha (list \"c\" \"a\" \"b\") }}"
        ),
        "[a b] [a b c]"
    );
    assert_eq!(run("{{ uniq (list 1 2 1 \"a\" \"a\") }}"), "[1 2 a]");
    assert_eq!(
        run("{{ first (list 1 2) }} {{ last (list 1 2) }} {{ first (list) }}"),
        "1 2 <no value>"
    );
    assert_eq!(
        run(
            "{{ toString 5 }} {{ toString \"s\" }} {{ toJson (dict \"a\" (list 1 \"x<\" true nil)) }}"
        ),
        "5 s {\"a\":[1,\"x\\u003c\",true,null]}"
    );
    assert_eq!(
        run("{{ cat \"a\" 1 nil \"b\" }} {{ substr 1 3 \"abcdef\" }}"),
        "a 1 b bc"
    );
}

#[test]
fn never_panics_on_truncated_or_mangled_templates() {
    let template = "Auto {{ .AutomationObject }}\n{{ range $f, $o := .Changed.FileChanges -}}\n- {{ $f | upper | printf \"%-10s|%q\" }}{{/* c */}}\n{{ range $id, $cs := $o }}{{ $id.Kind }} {{ index $cs 0 }}{{ end }}\n{{ else }}none{{ end -}}\n{{ define \"x\" }}{{ . }}{{ end }}{{ template \"x\" (slice \"abc\" 1) }}{{ `raw` }} 'a' 1.5e3";
    let bytes = template.as_bytes();
    for cut in 0..=bytes.len() {
        if let Ok(prefix) = std::str::from_utf8(&bytes[..cut]) {
            let _ = render(prefix);
            let _ = render(&bytes[cut..].iter().map(|&b| b as char).collect::<String>());
        }
    }
    for (i, _) in template.char_indices() {
        for replacement in [
            "}", "{", "(", ")", "\"", "$", ".", "-", "|", " ", "`", "'", "é",
        ] {
            let mut mangled = template.to_string();
            let end = i + template[i..].chars().next().map_or(0, char::len_utf8);
            mangled.replace_range(i..end, replacement);
            let _ = render(&mangled);
        }
    }
}
