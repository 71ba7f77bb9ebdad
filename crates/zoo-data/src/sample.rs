//! The sample every dataset returns: an image and whatever annotations its dataset has
//! (class mask, object instances, image label), and [`Annotation`], the kind of ground truth
//! a consumer needs from it.

/// One sample of any dataset: an image plus whatever annotations the dataset has.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// RGB image, `[3, H, W]` row-major (channel, row, column), values in `[0, 1]`.
    pub image: Vec<f32>,
    /// Image `[H, W]` (height, width).
    pub size: [usize; 2],
    /// Class of every pixel, row-major `H·W` (0 = background, 255 = ignore, e.g. VOC's
    /// object borders or COCO crowd regions); empty when the dataset has no masks.
    pub class_mask: Vec<u8>,
    /// Object instances, crowd regions flagged ([`Object::crowd`]); empty when the dataset
    /// has no instances.
    pub objects: Vec<Object>,
    /// Image-level label (classification datasets), `None` when the dataset has none.
    pub label: Option<usize>,
}

impl Sample {
    /// An image without annotations.
    pub fn unannotated(image: Vec<f32>, size: [usize; 2]) -> Self {
        Self {
            image,
            size,
            class_mask: Vec::new(),
            objects: Vec::new(),
            label: None,
        }
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.size[0]
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.size[1]
    }
}

/// One object instance of a sample (a shape of the procedural data, a COCO annotation).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Class id (0 is the background).
    pub class: usize,
    /// Tight box of its visible pixels `(x1, y1, x2, y2)`, pixel edges (x2, y2 exclusive).
    pub bbox: [f32; 4],
    /// Its visible pixels, row-major `H·W` of the sample's image.
    pub mask: Vec<bool>,
    /// A crowd region (COCO `iscrowd`), not an object: never a training target; in
    /// evaluation, detections inside it are neither matches nor false positives (as
    /// pycocotools counts them).
    pub crowd: bool,
    /// Area in square pixels as the annotation states it (COCO `area`, what pycocotools sorts
    /// into small / medium / large), scaled with the image; `None`: the mask's pixel count.
    pub area: Option<f32>,
}

impl Object {
    /// A (non-crowd) object whose area is its mask's pixel count.
    pub fn new(class: usize, bbox: [f32; 4], mask: Vec<bool>) -> Self {
        Self {
            class,
            bbox,
            mask,
            crowd: false,
            area: None,
        }
    }
}

/// The former name of [`Object`].
#[deprecated(note = "renamed to `zoo_data::Object`")]
pub type ShapeObject = Object;

/// A kind of ground truth: what a task reads from a [`Sample`] (a dataset format serves
/// some of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Annotation {
    /// A class per pixel ([`Sample::class_mask`]): semantic segmentation.
    ClassMask,
    /// A class per image ([`Sample::label`]): classification.
    Label,
    /// Object instances with boxes and masks ([`Sample::objects`]): detection and instance
    /// segmentation.
    Objects,
}

impl Annotation {
    /// What the annotation is, in a message ("class masks", "image labels", "object
    /// instances").
    pub fn describe(self) -> &'static str {
        match self {
            Annotation::ClassMask => "class masks",
            Annotation::Label => "image labels",
            Annotation::Objects => "object instances",
        }
    }
}
