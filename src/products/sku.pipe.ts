import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { validationProblem } from '../common/problems/validation';
import { SKU_MESSAGE, SKU_PATTERN } from './dto/product.dto';

/** A SKU in the path: trimmed, of the same form as in a body, else a 400 naming the parameter. */
@Injectable()
export class SkuPipe implements PipeTransform<string, string> {
  transform(value: string, metadata: ArgumentMetadata): string {
    const sku = typeof value === 'string' ? value.trim() : value;
    if (typeof sku === 'string' && SKU_PATTERN.test(sku)) return sku;
    throw validationProblem([{ field: metadata.data ?? 'sku', message: SKU_MESSAGE }]);
  }
}
