//! Walking the syntax tree with data, as Go's `text/template` executes it,
//! within bounds (output size, steps, template call depth).

use super::funcs::{self, FuncError};
use super::parse::{Arg, ArgKind, Command, Control, Node, Pipe};
use super::value::Value;
use super::{Template, TemplateError};

/// Most bytes a template may write.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;
/// Most nodes and commands one execution may evaluate.
const MAX_STEPS: u64 = 2_000_000;
/// Deepest chain of `{{template}}` calls.
const MAX_DEPTH: usize = 100;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Where an error happened: a node's position and its text.
struct Failure {
    /// The defined template executing when it failed (`None`: the main one).
    executing: Option<String>,
    pos: usize,
    context: String,
    message: String,
}

type Exec<T> = Result<T, Failure>;

fn fail<T>(pos: usize, context: impl ToString, message: impl Into<String>) -> Exec<T> {
    Err(Failure {
        executing: None,
        pos,
        context: context.to_string(),
        message: message.into(),
    })
}

struct State<'t> {
    template: &'t Template,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    steps: u64,
}

/// Runs the main template on `data`.
pub(crate) fn execute(template: &Template, data: &Value) -> Result<String, TemplateError> {
    let mut state = State {
        template,
        vars: vec![("$".into(), data.clone())],
        out: String::new(),
        depth: 0,
        steps: 0,
    };
    let root = &template.parsed.root;
    match state.walk(data, root) {
        Ok(_) => Ok(state.out),
        Err(failure) => Err(state.error(failure)),
    }
}

impl State<'_> {
    fn error(&self, failure: Failure) -> TemplateError {
        let text = &self.template.text;
        let pos = failure.pos.min(text.len());
        let before = &text.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = match before.iter().rposition(|&b| b == b'\n') {
            Some(newline) => pos - newline - 1,
            None => pos,
        };
        // Go shows at most 20 characters of the node.
        let mut node: String = failure.context.chars().take(20).collect();
        if node.len() < failure.context.len() {
            node.push_str("...");
        }
        TemplateError::Execute {
            name: self.template.name.clone(),
            line,
            column,
            executing: failure
                .executing
                .unwrap_or_else(|| self.template.name.clone()),
            node,
            message: failure.message,
        }
    }

    fn step(&mut self, pos: usize, context: &dyn Fn() -> String) -> Exec<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return fail(
                pos,
                context(),
                format!("template execution exceeds {MAX_STEPS} steps"),
            );
        }
        Ok(())
    }

    fn write(&mut self, text: &str, pos: usize, context: &dyn Fn() -> String) -> Exec<()> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return fail(
                pos,
                context(),
                format!("template output exceeds {MAX_OUTPUT} bytes"),
            );
        }
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Exec<Flow> {
        for node in nodes {
            match self.walk_node(dot, node)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value, node: &Node) -> Exec<Flow> {
        match node {
            Node::Text(text) => {
                self.step(0, &String::new)?;
                self.write(text, 0, &String::new)?;
            }
            Node::Action(pipe) => {
                self.step(pipe.pos, &|| pipe.to_string())?;
                let value = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let printed = match &value {
                        Value::Nil => "<no value>".to_string(),
                        other => other.go_string(),
                    };
                    self.write(&printed, pipe.pos, &|| pipe.to_string())?;
                }
            }
            Node::If(control) => return self.if_or_with(dot, control, false),
            Node::With(control) => return self.if_or_with(dot, control, true),
            Node::Range(control) => return self.range(dot, control),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                let context = || match pipe {
                    Some(pipe) => format!("{{{{template {} {pipe}}}}}", super::lex::go_quote(name)),
                    None => format!("{{{{template {}}}}}", super::lex::go_quote(name)),
                };
                self.step(*pos, &context)?;
                let Some(body) = self.template.parsed.defined.get(name) else {
                    return fail(
                        *pos,
                        context(),
                        format!("template {} not defined", super::lex::go_quote(name)),
                    );
                };
                if self.depth >= MAX_DEPTH {
                    return fail(
                        *pos,
                        context(),
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    );
                }
                let new_dot = match pipe {
                    Some(pipe) => self.eval_pipeline(dot, pipe)?,
                    None => Value::Nil,
                };
                let vars = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                self.depth += 1;
                let result = self.walk(&new_dot, body);
                self.depth -= 1;
                self.vars = vars;
                if let Err(mut failure) = result {
                    failure.executing.get_or_insert_with(|| name.clone());
                    return Err(failure);
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn if_or_with(&mut self, dot: &Value, control: &Control, with: bool) -> Exec<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &control.pipe)?;
        let flow = if value.is_true() {
            let new_dot = if with { &value } else { dot };
            self.walk(new_dot, &control.list)
        } else {
            self.walk(dot, &control.else_list)
        };
        self.vars.truncate(mark);
        flow
    }

    fn range(&mut self, dot: &Value, control: &Control) -> Exec<Flow> {
        let outer_mark = self.vars.len();
        let pipe = &control.pipe;
        let value = self.eval_pipeline(dot, pipe)?;
        let count = match &value {
            Value::List(list) => list.items.len(),
            Value::Map(map) => map.len(),
            Value::Int(n) => {
                if pipe.decl.len() > 1 {
                    return fail(
                        pipe.pos,
                        pipe,
                        format!("can't use {n} to iterate over more than one variable"),
                    );
                }
                usize::try_from(*n).unwrap_or(0)
            }
            Value::Nil => 0,
            other => {
                return fail(
                    pipe.pos,
                    pipe,
                    format!("range can't iterate over {}", other.go_string()),
                );
            }
        };
        // Items are fetched one at a time: `range 1000000000` must not allocate.
        let item = |k: usize| -> (Value, Value) {
            match &value {
                Value::List(list) => (Value::Int(k as i64), list.items[k].clone()),
                Value::Map(map) => map.entries()[k].clone(),
                _ => (Value::Int(k as i64), Value::Int(k as i64)),
            }
        };
        let mark = self.vars.len();
        let mut flow = Flow::Normal;
        for k in 0..count {
            self.step(pipe.pos, &|| pipe.to_string())?;
            let (index, elem) = &item(k);
            if !pipe.decl.is_empty() {
                if pipe.is_assign {
                    if pipe.decl.len() > 1 {
                        self.set_var(&pipe.decl[0], index.clone(), pipe)?;
                        self.set_var(&pipe.decl[1], elem.clone(), pipe)?;
                    } else {
                        self.set_var(&pipe.decl[0], elem.clone(), pipe)?;
                    }
                } else {
                    let top = self.vars.len();
                    self.vars[top - 1].1 = elem.clone();
                    if pipe.decl.len() > 1 {
                        self.vars[top - 2].1 = index.clone();
                    }
                }
            }
            let result = self.walk(elem, &control.list);
            self.vars.truncate(mark);
            match result? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        if count == 0 {
            flow = self.walk(dot, &control.else_list)?;
        }
        self.vars.truncate(outer_mark);
        Ok(flow)
    }

    fn set_var(&mut self, name: &str, value: Value, pipe: &Pipe) -> Exec<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => fail(pipe.pos, pipe, format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Exec<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone(), pipe)?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, last: Option<Value>) -> Exec<Value> {
        self.step(cmd.pos, &|| cmd.to_string())?;
        let Some(first) = cmd.args.first() else {
            return fail(cmd.pos, cmd, "empty command");
        };
        let rest = &cmd.args[1..];
        match &first.kind {
            ArgKind::Field(names) => self.field_chain(dot, dot.clone(), names, first, rest, last),
            ArgKind::Variable(name, names) => {
                let base = self.variable(name, first)?;
                if names.is_empty() {
                    self.not_a_function(first, rest, &last)?;
                    return Ok(base);
                }
                self.field_chain(dot, base, names, first, rest, last)
            }
            ArgKind::Chain(base, names) => {
                let base = self.eval_arg(dot, base)?;
                self.field_chain(dot, base, names, first, rest, last)
            }
            ArgKind::Ident(name) => self.call(dot, name, first, cmd, rest, last),
            ArgKind::Pipe(pipe) => {
                self.not_a_function(first, rest, &last)?;
                self.eval_pipeline(dot, pipe)
            }
            ArgKind::Nil => fail(first.pos, first, "nil is not a command"),
            _ => {
                self.not_a_function(first, rest, &last)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn not_a_function(&self, first: &Arg, rest: &[Arg], last: &Option<Value>) -> Exec<()> {
        if !rest.is_empty() || last.is_some() {
            return fail(
                first.pos,
                first,
                format!("can't give argument to non-function {first}"),
            );
        }
        Ok(())
    }

    fn variable(&self, name: &str, node: &Arg) -> Exec<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => fail(node.pos, node, format!("undefined variable: {name}")),
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> Exec<Value> {
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Int(i) => Ok(Value::Int(*i)),
            ArgKind::Float(f) => Ok(Value::Float(*f)),
            ArgKind::Str(s, _) => Ok(Value::from(s.as_str())),
            ArgKind::Field(names) => self.field_chain(dot, dot.clone(), names, arg, &[], None),
            ArgKind::Variable(name, names) => {
                let base = self.variable(name, arg)?;
                self.field_chain(dot, base, names, arg, &[], None)
            }
            ArgKind::Chain(base, names) => {
                let base = self.eval_arg(dot, base)?;
                self.field_chain(dot, base, names, arg, &[], None)
            }
            ArgKind::Pipe(pipe) => self.eval_pipeline(dot, pipe),
            ArgKind::Ident(name) => {
                let cmd = Command {
                    pos: arg.pos,
                    args: vec![arg.clone()],
                };
                self.call(dot, name, arg, &cmd, &[], None)
            }
        }
    }

    /// `.A.B.C` from `receiver`; only the last name may take arguments.
    fn field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        names: &[String],
        node: &Arg,
        args: &[Arg],
        last: Option<Value>,
    ) -> Exec<Value> {
        let mut value = receiver;
        for (i, name) in names.iter().enumerate() {
            let final_name = i + 1 == names.len();
            let has_args = final_name && (!args.is_empty() || last.is_some());
            value = self.field(
                &value,
                name,
                node,
                has_args,
                args.len() + usize::from(last.is_some()),
            )?;
        }
        if names.is_empty() && (!args.is_empty() || last.is_some()) {
            return fail(
                node.pos,
                node,
                format!("can't give argument to non-function {node}"),
            );
        }
        let _ = dot;
        Ok(value)
    }

    fn field(
        &self,
        receiver: &Value,
        name: &str,
        node: &Arg,
        has_args: bool,
        arg_count: usize,
    ) -> Exec<Value> {
        match receiver {
            // A missing value yields no value, as Go's default missingkey.
            Value::Nil => Ok(Value::Nil),
            Value::Struct(s) => {
                if let Some((_, result)) = s.methods.iter().find(|(n, _)| n == name) {
                    if has_args {
                        return fail(
                            node.pos,
                            node,
                            format!("wrong number of args for {name}: want 0 got {arg_count}"),
                        );
                    }
                    return Ok(result.clone());
                }
                match s.lookup(name) {
                    Some(_) if has_args => fail(
                        node.pos,
                        node,
                        format!("{name} has arguments but cannot be invoked as function"),
                    ),
                    Some(value) => Ok(value.clone()),
                    None => fail(
                        node.pos,
                        node,
                        format!("can't evaluate field {name} in type {}", s.type_name),
                    ),
                }
            }
            Value::Map(map) if map.has_string_keys() => {
                if has_args {
                    return fail(
                        node.pos,
                        node,
                        format!("{name} is not a method but has arguments"),
                    );
                }
                Ok(map.get(&Value::from(name)).cloned().unwrap_or(Value::Nil))
            }
            other => fail(
                node.pos,
                node,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            ),
        }
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        ident: &Arg,
        cmd: &Command,
        args: &[Arg],
        last: Option<Value>,
    ) -> Exec<Value> {
        // `and` and `or` stop at the first argument deciding the result.
        if name == "and" || name == "or" {
            let count = args.len() + usize::from(last.is_some());
            if count == 0 {
                return fail(
                    ident.pos,
                    ident,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(dot, arg)?;
                if value.is_true() != (name == "and") {
                    return Ok(value);
                }
            }
            if let Some(last) = last {
                value = last;
            }
            return Ok(value);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_arg(dot, arg)?);
        }
        let piped = last.is_some();
        if let Some(last) = last {
            values.push(last);
        }
        let got = values.len();
        match funcs::call(name, values) {
            Ok(value) => Ok(value),
            Err(FuncError::Call(message)) => {
                fail(cmd.pos, cmd, format!("error calling {name}: {message}"))
            }
            Err(FuncError::Arity { want, at_least }) => {
                let want = if at_least {
                    format!("at least {want}")
                } else {
                    want.to_string()
                };
                fail(
                    ident.pos,
                    ident,
                    format!("wrong number of args for {name}: want {want} got {got}"),
                )
            }
            Err(FuncError::Type {
                index,
                expected,
                got,
            }) => {
                let message = match got {
                    Some(got) => format!("wrong type for value; expected {expected}; got {got}"),
                    None => format!("invalid value; expected {expected}"),
                };
                match args.get(index) {
                    Some(arg) if !(piped && index == args.len()) => fail(arg.pos, arg, message),
                    _ => fail(ident.pos, ident, message),
                }
            }
        }
    }
}
