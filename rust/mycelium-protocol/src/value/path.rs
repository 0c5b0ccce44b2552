//! Field paths like `TickBatch.ticks[3].price`, kept as a stack of borrowed segments and
//! only rendered into a string when an error is reported.

#[derive(Debug, Clone, Copy)]
pub(super) enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

#[derive(Debug, Default)]
pub(super) struct Path<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> Path<'a> {
    pub(super) fn root(name: &'a str) -> Self {
        Path {
            segments: vec![Segment::Name(name)],
        }
    }

    pub(super) fn push(&mut self, segment: Segment<'a>) {
        self.segments.push(segment);
    }

    pub(super) fn pop(&mut self) {
        self.segments.pop();
    }

    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Name(name) if i == 0 => out.push_str(name),
                Segment::Name(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}
