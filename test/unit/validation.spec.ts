import { flattenValidationErrors } from '../../src/common/problems/validation';

describe('validation error paths', () => {
  it('names nested array members as items[0].quantity', () => {
    const errors = flattenValidationErrors([
      {
        property: 'items',
        children: [
          {
            property: '0',
            children: [
              {
                property: 'quantity',
                constraints: { min: 'quantity must not be less than 1' },
                children: [],
              },
              {
                property: 'productId',
                constraints: { isUuid: 'productId must be a UUID' },
                children: [],
              },
            ],
          },
        ],
      },
      { property: 'note', constraints: { isString: 'note must be a string' }, children: [] },
    ]);
    expect(errors).toEqual([
      { field: 'items[0].quantity', message: 'quantity must not be less than 1' },
      { field: 'items[0].productId', message: 'productId must be a UUID' },
      { field: 'note', message: 'note must be a string' },
    ]);
  });
});
