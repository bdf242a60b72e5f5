package thumb

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
)

// strip draws the frames (JPEGs, oldest first) side by side in cells the size of the
// newest one and returns the result as a JPEG: the hover preview steps through its cells.
func strip(frames []Image) ([]byte, error) {
	if len(frames) == 0 {
		return nil, fmt.Errorf("strip: no frames")
	}
	imgs := make([]image.Image, len(frames))
	for i, f := range frames {
		img, err := jpeg.Decode(bytes.NewReader(f.JPEG))
		if err != nil {
			return nil, fmt.Errorf("strip: frame %d: %w", i, err)
		}
		imgs[i] = img
	}
	cell := imgs[len(imgs)-1].Bounds().Size()
	dst := image.NewRGBA(image.Rect(0, 0, cell.X*len(imgs), cell.Y))
	for i, img := range imgs {
		r := image.Rect(i*cell.X, 0, (i+1)*cell.X, cell.Y)
		draw.Draw(dst, r, img, img.Bounds().Min, draw.Src)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, dst, &jpeg.Options{Quality: 75}); err != nil {
		return nil, fmt.Errorf("strip: %w", err)
	}
	return b.Bytes(), nil
}
